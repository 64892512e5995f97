"""tf.data input pipeline of panoptic TFRecords for kMaX-DeepLab.

make_dataset(dataset_options, descriptor, is_training) reads the TFRecord
files of a config's DatasetOptions (DeepLab2's record format, see
kmax_tf.data.tfrecord_format), runs PanopticSampleGenerator and batches
(image, targets) pairs:
  * training: file and record shuffling, repeat, parallel decoding, random
    augmentation from per-sample stateless seeds (reproducible with `seed`,
    whatever the parallelism), panoptic copy-paste from a second, differently
    shuffled stream, batches of the per-replica batch size (drop remainder);
  * evaluation: files and records in order, no augmentation, batches padded
    so the raw (original size) labels of different images stack.
Problems are reported with the file at fault: patterns matching nothing
(with the converter command to run), corrupt files (framing check before
reading, optionally every checksum; kmax_tf.data.record_check), malformed
records and label ids outside the dataset's label space (checked for every
decoded record). A record whose data checksum fails during iteration raises
TensorFlow's DataLossError, which does not name the file: call
diagnose_data_loss(dataset_options) then to get the file.
"""

import os
import random
from typing import List, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from kmax_tf.data import datasets
from kmax_tf.data import descriptor_json
from kmax_tf.data import record_check
from kmax_tf.data import target_keys
from kmax_tf.data import tfrecord_format
from kmax_tf.data.dataset_descriptor import DatasetDescriptor
from kmax_tf.data.panoptic_data_error import PanopticDataError
from kmax_tf.data.panoptic_sample_generator import PanopticSampleGenerator

SHUFFLE_BUFFER_SIZE = 1000
CYCLE_LENGTH = 32
CHECK_RECORDS = ("none", "headers", "full")
_CONVERTER_FORMATS = {
    datasets.COCO_PANOPTIC: "coco",
    datasets.CITYSCAPES_PANOPTIC: "cityscapes",
    datasets.ADE20K_PANOPTIC: "ade20k",
}


def _patterns(file_pattern: Union[str, Sequence[str]]) -> List[str]:
  if isinstance(file_pattern, (str, bytes)):
    return [file_pattern]
  return list(file_pattern)


def converter_hint(dataset_name: str, output_dir: str) -> str:
  """The command that creates the records of a dataset.

  Args:
    dataset_name: registered or custom dataset name ('' if unknown).
    output_dir: directory the command should write the records to ('' for
      the current directory).
  """
  data_format = _CONVERTER_FORMATS.get(dataset_name)
  if data_format:
    source = f"--format={data_format} --root=<{data_format} dataset root>"
  else:
    source = (f"--format=custom --dataset_name={dataset_name or '<name>'} "
              "--image_dir=<images> --panoptic_json=<COCO-panoptic JSON> "
              "--panoptic_dir=<panoptic PNGs> --splits=<split>")
  return (f"python -m kmax_tf.data.build_panoptic_tfrecords {source} "
          f"--output_dir={output_dir or '.'}")


def list_record_files(file_pattern: Union[str, Sequence[str]],
                      dataset_name: str = "") -> List[str]:
  """Sorted files matching the glob pattern(s).

  Args:
    file_pattern: one glob pattern or several (dataset_options.file_pattern).
    dataset_name: dataset name, used in the error message's converter hint.

  Raises:
    PanopticDataError: no pattern given, or a pattern matches no file; the
      message says which converter command creates the records.
  """
  patterns = _patterns(file_pattern)
  if not patterns or not all(patterns):
    raise PanopticDataError(
        "dataset_options.file_pattern is empty; set it to the TFRecord "
        "files, e.g. \"data/coco/train*.tfrecord\", created with "
        + converter_hint(dataset_name, "data/<dataset>"))
  files = set()
  for pattern in patterns:
    matches = tf.io.gfile.glob(pattern)
    if not matches:
      raise PanopticDataError(
          f"No TFRecord files match file_pattern {pattern!r} (dataset "
          f"{dataset_name!r}). Create them with:\n  "
          + converter_hint(dataset_name, os.path.dirname(pattern)))
    files.update(matches)
  return sorted(files)


def _label_space(descriptor: DatasetDescriptor) -> dict:
  space = descriptor_json.descriptor_to_dict(descriptor)
  space.pop("splits_to_sizes")
  return space


def resolve_descriptor(dataset_name: str,
                       files: Sequence[str] = ()) -> DatasetDescriptor:
  """The descriptor of `dataset_name`, registering one found beside `files`.

  A `dataset_descriptor.json` written by the converter next to the records
  makes a custom dataset known; for a registered dataset it must describe the
  same label space.

  Args:
    dataset_name: dataset_options.dataset.
    files: the record files; their directories are searched for
      dataset_descriptor.json.

  Raises:
    PanopticDataError: unknown dataset, or records written for another label
      space.
  """
  found = {}
  for directory in sorted({os.path.dirname(f) for f in files}):
    path = os.path.join(directory, descriptor_json.DESCRIPTOR_FILENAME)
    if tf.io.gfile.exists(path):
      found[path] = descriptor_json.read_descriptor(path)
  for path, descriptor in found.items():
    if descriptor.name != dataset_name:
      raise PanopticDataError(
          f"The records next to {path} were converted for dataset "
          f"{descriptor.name!r}, but dataset_options.dataset is "
          f"{dataset_name!r}")
  if dataset_name in datasets.dataset_names():
    registered = datasets.get_dataset_descriptor(dataset_name)
    for path, descriptor in found.items():
      if _label_space(descriptor) != _label_space(registered):
        raise PanopticDataError(
            f"{path} describes a different label space for "
            f"{dataset_name!r} ({descriptor.num_classes} classes, label "
            f"divisor {descriptor.panoptic_label_divisor}) than the "
            f"registered one ({registered.num_classes} classes, label "
            f"divisor {registered.panoptic_label_divisor})")
    return registered
  if not found:
    try:
      datasets.get_dataset_descriptor(dataset_name)
    except ValueError as e:
      raise PanopticDataError(
          f"{e} No {descriptor_json.DESCRIPTOR_FILENAME} was found next to "
          "the records either; convert custom datasets with "
          + converter_hint(dataset_name, "<output_dir>")) from None
  descriptor = next(iter(found.values()))
  datasets.register_dataset(descriptor)
  return descriptor


def label_check(label: tf.Tensor, descriptor: DatasetDescriptor,
                source: tf.Tensor, image_name: tf.Tensor) -> tf.Operation:
  """Asserts every panoptic id is valid for the dataset.

  Valid: class id (id // divisor) in [0, num_classes) or the ignore label,
  and no instance id (id % divisor) on a stuff class.

  Args:
    label: int32 panoptic ids (class * label_divisor + instance), any shape.
    descriptor: the dataset's DatasetDescriptor.
    source: string scalar, the record file (for the error message).
    image_name: string scalar, the image name (for the error message).
  """
  divisor = descriptor.panoptic_label_divisor
  flat = tf.reshape(label, [-1])
  classes = flat // divisor
  in_range = tf.logical_and(classes >= 0, classes < descriptor.num_classes)
  known = tf.logical_or(in_range, tf.equal(classes, descriptor.ignore_label))
  stuff_table = np.zeros(descriptor.num_classes, bool)
  stuff_table[list(descriptor.stuff_class_ids)] = True
  is_stuff = tf.logical_and(in_range, tf.gather(
      stuff_table, tf.where(in_range, classes, 0)))
  stuff_instance = tf.logical_and(is_stuff, flat % divisor > 0)
  valid = tf.logical_and(tf.logical_and(known, flat >= 0),
                         tf.logical_not(stuff_instance))
  first_bad = tf.strings.reduce_join(tf.strings.as_string(
      tf.boolean_mask(flat, tf.logical_not(valid))[:1]))
  message = tf.strings.join([
      f"Label ids outside dataset {descriptor.name}: file ", source,
      ", image ", image_name, " has panoptic id ", first_bad,
      f" (= class * {divisor} + instance); valid classes are 0.."
      f"{descriptor.num_classes - 1} (ignore label "
      f"{descriptor.ignore_label}), with instance ids on thing classes only. "
      "Were these records written for another dataset or label divisor?"])
  return tf.debugging.Assert(tf.reduce_all(valid), [message])


def _decoder(descriptor: DatasetDescriptor, with_label: bool):
  def decode(source, serialized):
    sample = tfrecord_format.decode_example(serialized, source, with_label)
    if with_label:
      check = label_check(sample[tfrecord_format.LABEL], descriptor, source,
                          sample[tfrecord_format.IMAGE_NAME])
      with tf.control_dependencies([check]):
        sample[tfrecord_format.LABEL] = tf.identity(
            sample[tfrecord_format.LABEL])
    return sample
  return decode


def _records(files: List[str], is_training: bool, seed: Optional[int],
             stream: int, input_context, cycle_length: int,
             shuffle_buffer_size: int) -> tf.data.Dataset:
  """(file name, serialized record) pairs."""
  dataset = tf.data.Dataset.from_tensor_slices(files)
  shard_records = False
  if input_context is not None and input_context.num_input_pipelines > 1:
    if len(files) >= input_context.num_input_pipelines:
      dataset = dataset.shard(input_context.num_input_pipelines,
                              input_context.input_pipeline_id)
    else:
      shard_records = True
  stream_seed = None if seed is None else seed * 7919 + stream

  def read(path):
    return tf.data.TFRecordDataset(path).map(lambda record: (path, record))

  if not is_training:
    dataset = dataset.flat_map(read)
  else:
    dataset = dataset.shuffle(len(files), seed=stream_seed,
                              reshuffle_each_iteration=True).repeat()
    dataset = dataset.interleave(
        read, cycle_length=max(1, min(cycle_length, len(files))),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  if shard_records:
    dataset = dataset.shard(input_context.num_input_pipelines,
                            input_context.input_pipeline_id)
  if is_training and shuffle_buffer_size > 1:
    dataset = dataset.shuffle(shuffle_buffer_size, seed=stream_seed)
  return dataset


def _eval_padding(descriptor: DatasetDescriptor, element_spec) -> dict:
  values = {}
  for key, spec in element_spec.items():
    if spec.dtype == tf.string:
      values[key] = tf.constant("", tf.string)
    elif spec.dtype == tf.bool:
      values[key] = tf.constant(False)
    elif key == target_keys.PANOPTIC_RAW:
      values[key] = tf.constant(
          descriptor.ignore_label * descriptor.panoptic_label_divisor,
          spec.dtype)
    elif key == target_keys.SEMANTIC_RAW:
      values[key] = tf.constant(descriptor.ignore_label, spec.dtype)
    else:
      values[key] = tf.constant(0, spec.dtype)
  return values


def make_dataset(dataset_options, descriptor: Optional[DatasetDescriptor] = None,
                 is_training: bool = False, *, seed: Optional[int] = None,
                 input_context: Optional[tf.distribute.InputContext] = None,
                 batch_size: Optional[int] = None,
                 center_targets: bool = False,
                 check_records: str = "headers",
                 shuffle_buffer_size: int = SHUFFLE_BUFFER_SIZE,
                 cycle_length: int = CYCLE_LENGTH) -> tf.data.Dataset:
  """Batches of (image, targets dict) from a config's DatasetOptions.

  Args:
    dataset_options: DatasetOptions message (kmax_tf.config), read fields:
      dataset, file_pattern, batch_size, crop_size, min/max_resize_value,
      resize_factor, augmentations, thing_id_mask_annotations, max_thing_id,
      increase_small_instance_weights, small_instance_threshold/weight,
      sigma, decode_groundtruth_label.
    descriptor: Label space; None resolves dataset_options.dataset
      (registering a custom dataset from the dataset_descriptor.json next to
      the records).
    is_training: Training (shuffled, repeated, augmented) or evaluation.
    seed: Makes training reproducible (shuffling and augmentation); None
      draws a fresh one.
    input_context: tf.distribute input context (shards the files between
      input pipelines; batch_size becomes per replica).
    batch_size: Global batch size; default dataset_options.batch_size.
    center_targets: Also produce Panoptic-DeepLab center/offset targets.
    check_records: "headers" (default: framing of every file, cheap),
      "full" (also every data checksum: reads all files once) or "none".
    shuffle_buffer_size: Record shuffle buffer (training).
    cycle_length: Files read concurrently (training).

  Returns:
    tf.data.Dataset of (image float32 [B, H, W, 3], {target name: tensor}).

  Raises:
    PanopticDataError: no files, corrupt files, unknown dataset or mismatched
      label space. Malformed records and label ids outside the dataset raise
      tf.errors.InvalidArgumentError naming the file when iterated.
  """
  if check_records not in CHECK_RECORDS:
    raise ValueError(f"check_records must be one of {CHECK_RECORDS}")
  dataset_name = dataset_options.dataset
  files = list_record_files(list(dataset_options.file_pattern), dataset_name)
  if descriptor is None:
    descriptor = resolve_descriptor(dataset_name, files)
  if check_records != "none":
    record_check.check_tfrecord_files(files, full=check_records == "full")
  with_label = dataset_options.decode_groundtruth_label
  if is_training and not with_label:
    raise PanopticDataError("training needs decode_groundtruth_label: true")
  generator = PanopticSampleGenerator.from_dataset_options(
      dataset_options, descriptor, is_training, center_targets=center_targets)
  global_batch = batch_size or dataset_options.batch_size
  per_replica_batch = (input_context.get_per_replica_batch_size(global_batch)
                       if input_context is not None else global_batch)
  if seed is None:
    seed = random.SystemRandom().randrange(2**31) if is_training else 0
  decode = _decoder(descriptor, with_label)
  # Deterministic element order keeps a seeded run reproducible.
  deterministic = True

  dataset = _records(files, is_training, seed, 0, input_context,
                     cycle_length, shuffle_buffer_size).map(
                         decode, num_parallel_calls=tf.data.AUTOTUNE,
                         deterministic=deterministic)
  if is_training:
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    streams = [dataset]
    if generator.uses_copy_paste:
      streams.append(_records(files, True, seed, 1, input_context,
                              cycle_length, shuffle_buffer_size).map(
                                  decode, num_parallel_calls=tf.data.AUTOTUNE,
                                  deterministic=deterministic))
    dataset = tf.data.Dataset.zip(tuple(streams)).enumerate()

    def generate(index, samples):
      sample_seed = tf.stack([tf.constant(seed * 1009 + pipeline_id,
                                          tf.int64), index])
      paste = samples[1] if len(samples) > 1 else None
      return generator(samples[0], sample_seed, paste)
  else:
    def generate(sample):
      return generator(sample)

  dataset = dataset.map(generate, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=deterministic)
  if is_training:
    dataset = dataset.batch(per_replica_batch, drop_remainder=True)
  else:
    dataset = dataset.padded_batch(
        per_replica_batch,
        padding_values=_eval_padding(descriptor, dataset.element_spec))
  dataset = dataset.map(_split_image)
  return dataset.prefetch(tf.data.AUTOTUNE)


def diagnose_data_loss(dataset_options) -> None:
  """Names the corrupt file after iteration raised tf.errors.DataLossError.

  TensorFlow's reader reports a damaged record without its file; this reads
  every file of dataset_options.file_pattern with full checksum checks.

  Args:
    dataset_options: the DatasetOptions whose records were being read.

  Raises:
    PanopticDataError: naming the corrupt file and record (if one is found).
  """
  files = list_record_files(list(dataset_options.file_pattern),
                            dataset_options.dataset)
  record_check.check_tfrecord_files(files, full=True)


def _split_image(sample):
  targets = dict(sample)
  image = targets.pop(target_keys.IMAGE)
  return image, targets
