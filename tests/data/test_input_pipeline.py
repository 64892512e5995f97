"""make_dataset: DeepLab2 parity of the eval pipeline, training mode, errors."""
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.config import parse_config
from kmax_tf.data import datasets
from kmax_tf.data import input_pipeline
from kmax_tf.data import shard_writer
from kmax_tf.data import target_keys
from kmax_tf.data import tfrecord_format
from kmax_tf.data.panoptic_data_error import PanopticDataError
from kmax_tf.testing import deeplab2_fixtures

_PARITY_IMAGES = ("000000037777", "000000087038")


def _options(file_pattern, crop=641, batch_size=1, extra="", dataset=None):
  text = f"""eval_dataset_options {{
    dataset: "{dataset or 'coco_panoptic'}"
    file_pattern: "{file_pattern}"
    batch_size: {batch_size}
    crop_size: {crop} crop_size: {crop}
    min_resize_value: {crop} max_resize_value: {crop}
    thing_id_mask_annotations: true
    {extra}
  }}"""
  return parse_config(text).eval_dataset_options


@pytest.fixture(scope="module")
def parity_records(module_scratch, coco_records):
  """The two parity images, as a single shard, written by our converter."""
  from kmax_tf.data import coco_panoptic_converter  # pylint: disable=g-import-not-at-top
  from kmax_tf.data.panoptic_label_encoder import PanopticLabelEncoder  # pylint: disable=g-import-not-at-top
  root = os.path.join(deeplab2_fixtures.fixtures_dir(), "coco_val2017_16")
  items, descriptor, mapping = coco_panoptic_converter.conversion_items(
      root, "val")
  items = [item for item in items if item.name in _PARITY_IMAGES]
  encoder = PanopticLabelEncoder(mapping, descriptor.class_has_instances_list,
                                 descriptor.ignore_label,
                                 descriptor.panoptic_label_divisor)
  output_dir = str(module_scratch.mktemp("parity"))
  shard_writer.write_tfrecord_shards(items, encoder, output_dir, "val",
                                     num_shards=1, num_workers=1,
                                     show_progress=False)
  return output_dir


def _samples(dataset):
  for image, targets in dataset:
    sample = {key: value.numpy() for key, value in targets.items()}
    sample[target_keys.IMAGE] = image.numpy()
    yield sample


def test_eval_pipeline_equals_deeplab2_at_641(parity_records):
  """Every array DeepLab2's eval pipeline produced, exactly (image too).

  The fixture README allows float noise on the image; none is needed: the
  resize and the (x - 127.5) pad + 127.5 round trip are the same float32 ops.
  """
  fixture = np.load(os.path.join(deeplab2_fixtures.parity_dir(), "pipeline",
                                 "pipeline_coco_eval_641.npz"))
  dataset = input_pipeline.make_dataset(
      _options(os.path.join(parity_records, "val*")), is_training=False,
      center_targets=True)
  samples = list(_samples(dataset))
  assert len(samples) == 2
  for index, sample in enumerate(samples):
    keys = [k for k in fixture.files if k.startswith(f"sample{index}/")
            and "@" not in k and not k.endswith("decoded_image_uint8")]
    assert len(keys) == 16
    for key in keys:
      name = key.split("/", 1)[1]
      ours = np.asarray(sample[name][0])
      assert ours.dtype == fixture[key].dtype, key
      np.testing.assert_array_equal(ours, fixture[key], err_msg=key)
    height, width = fixture[f"sample{index}/resized_image@shape"][:2]
    # Outside the resized image: the padding values.
    assert np.all(sample[target_keys.IMAGE][0, height:] == 127.5)
    assert np.all(sample[target_keys.PANOPTIC_GT][0, :, width:] == 0)


def test_eval_pipeline_equals_deeplab2_loss_targets_at_257(parity_records):
  """The targets the loss fixture was computed from (crop 257, batch of 2)."""
  fixture = np.load(os.path.join(deeplab2_fixtures.parity_dir(), "loss",
                                 "loss_coco_r50.npz"))
  dataset = input_pipeline.make_dataset(
      _options(os.path.join(parity_records, "val*"), crop=257, batch_size=2),
      is_training=False)
  (sample,) = list(_samples(dataset))
  for name in ("image", "semantic_gt", "semantic_loss_weight",
               "thing_id_mask_gt", "thing_id_class_gt", "panoptic_gt",
               "is_crowd_gt"):
    np.testing.assert_array_equal(sample[name], fixture[f"target/{name}"],
                                  err_msg=name)


def test_training_batches_are_reproducible(coco_records):
  """Seeded training batches repeat exactly (AutoAugment: generator tests)."""
  options = _options(os.path.join(coco_records, "val*"), crop=129,
                     batch_size=2, extra="""augmentations {
        min_scale_factor: 0.5 max_scale_factor: 1.5
        scale_factor_step_size: 0.25
        panoptic_copy_paste { panoptic_copy_paste_scale: 0.5
          panoptic_copy_paste_thing_option: "all" } }""")

  def first_batches(seed):
    dataset = input_pipeline.make_dataset(options, is_training=True,
                                          seed=seed, shuffle_buffer_size=2)
    return list(dataset.take(2))

  first, again = first_batches(3), first_batches(3)
  image, targets = first[0]
  assert image.shape == (2, 129, 129, 3) and image.dtype == tf.float32
  assert targets[target_keys.THING_ID_CLASS_GT].shape == (2, 128)
  assert targets[target_keys.THING_ID_MASK_GT].shape == (2, 129, 129)
  assert target_keys.PANOPTIC_RAW not in targets
  for (image_a, targets_a), (image_b, targets_b) in zip(first, again):
    np.testing.assert_array_equal(image_a, image_b)
    for key in targets_a:
      np.testing.assert_array_equal(targets_a[key], targets_b[key])
  assert not np.array_equal(first[0][0], first[1][0])
  # Labels stay valid for the dataset after all augmentations.
  coco = datasets.get_dataset_descriptor("coco_panoptic")
  for _, targets in first:
    semantic = targets[target_keys.SEMANTIC_GT].numpy()
    assert semantic.min() >= 0 and semantic.max() < coco.num_classes


def test_eval_batches_pad_raw_labels(coco_records):
  dataset = input_pipeline.make_dataset(
      _options(os.path.join(coco_records, "val*"), crop=129, batch_size=3),
      is_training=False)
  batches = list(dataset)
  assert [b[0].shape[0] for b in batches] == [3, 3, 3, 3, 3, 1]
  _, targets = batches[0]
  sizes = targets[target_keys.SIZE_RAW].numpy()
  raw = targets[target_keys.PANOPTIC_RAW].numpy()
  assert raw.shape[1:] == (sizes[:, 0].max(), sizes[:, 1].max())
  names = [n.decode() for n in targets[target_keys.IMAGE_NAME].numpy()]
  assert names == sorted(names)  # evaluation keeps the record order


def test_input_context_and_unlabeled_eval(coco_records):
  options = _options(os.path.join(coco_records, "val*"), crop=33,
                     batch_size=4, extra="decode_groundtruth_label: false")
  context = tf.distribute.InputContext(num_input_pipelines=2,
                                       input_pipeline_id=1,
                                       num_replicas_in_sync=2)
  batches = list(input_pipeline.make_dataset(options, input_context=context))
  assert [image.shape[0] for image, _ in batches] == [2, 2, 2, 2]
  _, targets = batches[0]
  assert sorted(targets) == [target_keys.IMAGE_NAME, target_keys.SIZE_RAW]


def test_pattern_matching_nothing_names_the_converter(tmp_path):
  pattern = str(tmp_path / "coco" / "train*.tfrecord")
  with pytest.raises(PanopticDataError) as error:
    input_pipeline.make_dataset(_options(pattern), is_training=True)
  message = str(error.value)
  assert pattern in message
  assert ("python -m kmax_tf.data.build_panoptic_tfrecords --format=coco "
          in message)
  assert f"--output_dir={tmp_path / 'coco'}" in message


def _copy_records(source, destination):
  os.makedirs(destination)
  for name in os.listdir(source):
    shutil.copy(os.path.join(source, name), destination)
  return destination


def test_truncated_file_is_named(tmp_path, coco_records):
  directory = _copy_records(coco_records, str(tmp_path / "records"))
  victim = os.path.join(directory, "val-00002-of-00004.tfrecord")
  with open(victim, "rb") as f:
    data = f.read()
  with open(victim, "wb") as f:
    f.write(data[:len(data) - 1000])
  with pytest.raises(PanopticDataError, match="val-00002-of-00004.tfrecord.*"
                     "truncated"):
    input_pipeline.make_dataset(_options(os.path.join(directory, "val*")))


def test_corrupt_record_data_is_named(tmp_path, coco_records):
  directory = _copy_records(coco_records, str(tmp_path / "records"))
  victim = os.path.join(directory, "val-00001-of-00004.tfrecord")
  with open(victim, "r+b") as f:
    f.seek(50_000)
    byte = f.read(1)
    f.seek(50_000)
    f.write(bytes([byte[0] ^ 0xFF]))
  options = _options(os.path.join(directory, "val*"), crop=33)
  with pytest.raises(PanopticDataError,
                     match="Corrupt TFRecord file .*val-00001-of-00004"):
    input_pipeline.make_dataset(options, check_records="full")
  # The default (header) check lets it through; TensorFlow's error during
  # iteration does not name the file, diagnose_data_loss does.
  with pytest.raises(tf.errors.DataLossError):
    list(input_pipeline.make_dataset(options))
  with pytest.raises(PanopticDataError,
                     match="Corrupt TFRecord file .*val-00001-of-00004"):
    input_pipeline.diagnose_data_loss(options)


def _write_records(path, examples):
  with tf.io.TFRecordWriter(path) as writer:
    for example in examples:
      writer.write(example.SerializeToString())


def _tiny_jpeg():
  return tf.io.encode_jpeg(tf.zeros([4, 6, 3], tf.uint8)).numpy()


def test_label_ids_outside_the_dataset(tmp_path):
  label = np.zeros((4, 6), np.int32)
  label[1, 2] = 500 * 256 + 1  # class 500: COCO has 134 classes
  path = str(tmp_path / "val-00000-of-00001.tfrecord")
  _write_records(path, [tfrecord_format.make_example(
      _tiny_jpeg(), "jpeg", "odd_image", 4, 6, label)])
  dataset = input_pipeline.make_dataset(_options(path, crop=9),
                                        is_training=False)
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    list(dataset)
  message = str(error.value)
  assert "Label ids outside dataset coco_panoptic" in message
  assert path in message and "odd_image" in message and "128001" in message


def test_malformed_record_names_the_file(tmp_path):
  example = tfrecord_format.make_example(_tiny_jpeg(), "jpeg", "short", 4, 6,
                                         np.zeros((4, 6), np.int32))
  example.features.feature[tfrecord_format.KEY_ENCODED_LABEL].bytes_list.value[
      0] = b"\0" * 10
  path = str(tmp_path / "val-00000-of-00001.tfrecord")
  _write_records(path, [example])
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=f"Malformed panoptic record in file.*{path}"):
    list(input_pipeline.make_dataset(_options(path, crop=9)))


def test_custom_dataset_is_registered_from_its_descriptor(tmp_path,
                                                          coco_records):
  from kmax_tf.data import descriptor_json  # pylint: disable=g-import-not-at-top
  directory = _copy_records(coco_records, str(tmp_path / "records"))
  coco = datasets.get_dataset_descriptor("coco_panoptic")
  mine = descriptor_json.descriptor_from_dict(dict(
      descriptor_json.descriptor_to_dict(coco), name="pipeline_test_coco"))
  descriptor_json.write_descriptor(mine, directory)
  options = _options(os.path.join(directory, "val*"), crop=65,
                     dataset="pipeline_test_coco")
  image, _ = next(iter(input_pipeline.make_dataset(options)))
  assert image.shape == (1, 65, 65, 3)
  assert datasets.get_dataset_descriptor("pipeline_test_coco") == mine
  # A config naming another dataset than the records were written for.
  with pytest.raises(PanopticDataError, match="converted for dataset "
                     "'pipeline_test_coco'"):
    input_pipeline.make_dataset(_options(os.path.join(directory, "val*")))


@pytest.mark.parametrize("bad", [2001, 19000, -1])
def test_label_check_rules(bad):
  cityscapes = datasets.get_dataset_descriptor("cityscapes_panoptic")
  good = tf.constant([255000, 0, 11001, 2000, 18000])
  input_pipeline.label_check(good, cityscapes, tf.constant("f"),
                             tf.constant("i"))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=f"has panoptic id {bad} "):
    input_pipeline.label_check(tf.concat([good, [bad]], 0), cityscapes,
                               tf.constant("f"), tf.constant("i"))
