"""Custom COCO-panoptic datasets: label space from the JSON, no code edits."""
import json
import os

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from kmax_tf.config import parse_config
from kmax_tf.data import build_panoptic_tfrecords
from kmax_tf.data import custom_panoptic_converter
from kmax_tf.data import datasets
from kmax_tf.data import descriptor_json
from kmax_tf.data import input_pipeline
from kmax_tf.data import target_keys
from kmax_tf.data import tfrecord_format


def _decoded_labels(paths):
  labels = {}
  for record in tf.data.TFRecordDataset(paths):
    sample = tfrecord_format.decode_example(record)
    labels[sample["image_name"].numpy().decode()] = sample["label"].numpy()[
        ..., 0]
  return labels


def test_coco_as_a_custom_dataset(tmp_path, coco_root, expected_coco_labels):
  """COCO's own files read as an unknown dataset give COCO's label space."""
  output_dir = str(tmp_path / "records")
  written = build_panoptic_tfrecords.build_panoptic_tfrecords(
      "custom", output_dir, splits=["val"], dataset_name="custom_test_coco",
      image_dir=os.path.join(coco_root, "val2017"),
      panoptic_json=os.path.join(coco_root, "annotations",
                                 "panoptic_val2017.json"),
      panoptic_dir=os.path.join(coco_root, "annotations", "panoptic_val2017"),
      num_shards=2, num_workers=1, show_progress=False)
  descriptor = descriptor_json.read_descriptor(
      os.path.join(output_dir, descriptor_json.DESCRIPTOR_FILENAME))
  coco = datasets.get_dataset_descriptor("coco_panoptic")
  assert descriptor.name == "custom_test_coco"
  assert descriptor.num_classes == coco.num_classes == 134
  assert descriptor.class_names[1:] == coco.class_names[1:]
  assert descriptor.class_has_instances_list == coco.class_has_instances_list
  assert descriptor.train_id_to_eval_id[1:] == coco.train_id_to_eval_id[1:]
  assert descriptor.ignore_label == 0
  assert descriptor.panoptic_label_divisor == 1000
  assert dict(descriptor.splits_to_sizes) == {"val": 16}
  labels = _decoded_labels(written["val"])
  for name, expected in expected_coco_labels.items():
    np.testing.assert_array_equal(
        labels[name], expected // 256 * 1000 + expected % 256, err_msg=name)

  # The config only names the dataset: the pipeline registers it from the
  # descriptor file next to the records.
  options = parse_config(f"""eval_dataset_options {{
      dataset: "custom_test_coco"
      file_pattern: "{output_dir}/val*"
      batch_size: 1 crop_size: 33 crop_size: 33
      thing_id_mask_annotations: true }}"""
                         ).eval_dataset_options
  image, targets = next(iter(input_pipeline.make_dataset(options)))
  assert image.shape == (1, 33, 33, 3)
  assert targets[target_keys.PANOPTIC_RAW].numpy().max() >= 1000
  assert datasets.get_dataset_descriptor("custom_test_coco") == descriptor


def _toy_dataset(root):
  """Two 8x10 images: category 0 'floor' (stuff), 5 'robot' (thing)."""
  os.makedirs(os.path.join(root, "train"))
  os.makedirs(os.path.join(root, "annotations", "panoptic_train"))
  images, annotations = [], []
  for index in range(2):
    ids = np.full((8, 10), 1, np.uint32)  # floor
    ids[1:4, 1:4] = 2  # robot #1
    ids[5:7, 5:9] = 3  # robot #2 (crowd in image 1)
    ids[0, 9] = 0  # unlabeled
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1)
    Image.fromarray(rgb.astype(np.uint8)).save(
        os.path.join(root, "annotations", "panoptic_train", f"p{index}.png"))
    Image.fromarray(np.full((8, 10, 3), 40 * index, np.uint8)).save(
        os.path.join(root, "train", f"img{index}.png"))
    images.append({"id": index, "file_name": f"img{index}.png",
                   "height": 8, "width": 10})
    segments = [
        {"id": 1, "category_id": 0, "iscrowd": 0, "area": 62},
        {"id": 2, "category_id": 5, "iscrowd": 0, "area": 9},
        {"id": 3, "category_id": 5, "iscrowd": index, "area": 8}]
    annotations.append({"image_id": index, "file_name": f"p{index}.png",
                        "segments_info": segments})
  categories = [{"id": 0, "name": "floor", "isthing": 0,
                 "color": [10, 20, 30]},
                {"id": 5, "name": "robot", "isthing": 1}]
  with open(os.path.join(root, "annotations", "panoptic_train.json"),
            "w") as f:
    json.dump({"images": images, "annotations": annotations,
               "categories": categories}, f)


def test_new_dataset_from_its_json(tmp_path):
  _toy_dataset(str(tmp_path / "toy"))
  output_dir = str(tmp_path / "records")
  written = build_panoptic_tfrecords.build_panoptic_tfrecords(
      "custom", output_dir, root=str(tmp_path / "toy"), splits=["train"],
      dataset_name="toy_robots", label_divisor=100, num_workers=1,
      show_progress=False)
  descriptor = descriptor_json.read_descriptor(
      os.path.join(output_dir, descriptor_json.DESCRIPTOR_FILENAME))
  assert descriptor.num_classes == 3
  assert descriptor.class_names == ("void", "floor", "robot")
  assert descriptor.class_has_instances_list == (2,)
  assert descriptor.stuff_class_ids == (1,)
  assert descriptor.class_colors[1] == (10, 20, 30)
  assert descriptor.class_colors[2] != (0, 0, 0)  # generated
  assert descriptor.train_id_to_eval_id == (6, 0, 5)  # void: an unused id
  labels = _decoded_labels(written["train"])
  expected = np.full((8, 10), 100, np.int32)
  expected[1:4, 1:4] = 201
  expected[5:7, 5:9] = 202
  expected[0, 9] = 0
  np.testing.assert_array_equal(labels["img0"], expected)
  expected[5:7, 5:9] = 0  # crowd -> void
  np.testing.assert_array_equal(labels["img1"], expected)


def test_splits_must_share_categories(tmp_path):
  _toy_dataset(str(tmp_path / "toy"))
  output_dir = str(tmp_path / "records")
  build_panoptic_tfrecords.build_panoptic_tfrecords(
      "custom", output_dir, root=str(tmp_path / "toy"), splits=["train"],
      dataset_name="toy_robots", num_workers=1, show_progress=False)
  json_path = tmp_path / "toy" / "annotations" / "panoptic_train.json"
  data = json.loads(json_path.read_text())
  data["categories"].append({"id": 9, "name": "cat", "isthing": 1})
  json_path.write_text(json.dumps(data))
  with pytest.raises(custom_panoptic_converter.PanopticDataError,
                     match="another label space"):
    build_panoptic_tfrecords.build_panoptic_tfrecords(
        "custom", output_dir, root=str(tmp_path / "toy"), splits=["train"],
        dataset_name="toy_robots", num_workers=1, show_progress=False)
