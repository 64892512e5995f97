"""COCO panoptic converter on the 16 real COCO val images of the fixtures."""
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.data import coco_panoptic_converter
from kmax_tf.data import descriptor_json
from kmax_tf.data import tfrecord_format
from kmax_tf.data.panoptic_data_error import PanopticDataError
from kmax_tf.testing import deeplab2_fixtures


def _read_records(directory, prefix="val"):
  examples = {}
  for path in sorted(glob.glob(os.path.join(directory, f"{prefix}-*"))):
    for record in tf.data.TFRecordDataset(path):
      example = tf.train.Example.FromString(record.numpy())
      name = example.features.feature[
          tfrecord_format.KEY_IMAGE_FILENAME].bytes_list.value[0].decode()
      examples[name] = example
  return examples


def _label(example):
  feature = example.features.feature
  height = feature[tfrecord_format.KEY_IMAGE_HEIGHT].int64_list.value[0]
  width = feature[tfrecord_format.KEY_IMAGE_WIDTH].int64_list.value[0]
  data = feature[tfrecord_format.KEY_ENCODED_LABEL].bytes_list.value[0]
  return np.frombuffer(data, "<i4").reshape(height, width)


def test_labels_decode_bit_for_bit(coco_records, expected_coco_labels):
  examples = _read_records(coco_records)
  assert sorted(examples) == sorted(expected_coco_labels)
  assert len(examples) == 16
  for name, expected in expected_coco_labels.items():
    np.testing.assert_array_equal(_label(examples[name]), expected,
                                  err_msg=name)
  # Crowd regions are void (DeepLab2's treat_crowd_as_ignore default).
  assert len(np.unique(expected_coco_labels["000000087038"] // 256)) > 3


def test_images_are_the_original_files(coco_records, coco_root):
  for name, example in _read_records(coco_records).items():
    feature = example.features.feature
    with open(os.path.join(coco_root, "val2017", name + ".jpg"), "rb") as f:
      assert feature[tfrecord_format.KEY_ENCODED_IMAGE].bytes_list.value[
          0] == f.read()
    assert feature[tfrecord_format.KEY_IMAGE_FORMAT].bytes_list.value == [
        b"jpeg"]
    assert feature[tfrecord_format.KEY_LABEL_FORMAT].bytes_list.value == [
        b"raw"]


def test_records_match_deeplab2_listing(coco_records):
  """Same features, sizes and leading bytes as DeepLab2's converter wrote."""
  path = os.path.join(deeplab2_fixtures.parity_dir(), "pipeline",
                      "tfrecord_format.json")
  with open(path) as f:
    listing = json.load(f)
  examples = _read_records(coco_records)
  for entry in listing:
    name = entry["image/filename"]["value"]
    feature = examples[name].features.feature
    assert sorted(feature) == sorted(entry)
    for key, spec in entry.items():
      if spec["type"] == "int64_list":
        assert list(feature[key].int64_list.value) == spec["value"], key
      else:
        value = feature[key].bytes_list.value[0]
        assert len(value) == spec["nbytes"], key
        if "head_hex" in spec:
          assert value[:8].hex() == spec["head_hex"], key
        if "value" in spec:
          assert value.decode() == spec["value"], key


def test_shards_and_descriptor(coco_records):
  shards = sorted(os.listdir(coco_records))
  assert shards == [descriptor_json.DESCRIPTOR_FILENAME] + [
      f"val-0000{i}-of-00004.tfrecord" for i in range(4)]
  descriptor = descriptor_json.read_descriptor(
      os.path.join(coco_records, descriptor_json.DESCRIPTOR_FILENAME))
  assert descriptor.name == "coco_panoptic" and descriptor.num_classes == 134


def test_unknown_category_is_rejected(tmp_path, coco_root):
  with open(os.path.join(coco_root, "annotations",
                         "panoptic_val2017.json")) as f:
    data = json.load(f)
  data["categories"].append({"id": 999, "name": "unicorn", "isthing": 1})
  path = tmp_path / "panoptic.json"
  path.write_text(json.dumps(data))
  with pytest.raises(PanopticDataError, match="unicorn.*--format=custom"):
    coco_panoptic_converter.conversion_items(coco_root, "val",
                                             panoptic_json=str(path))
