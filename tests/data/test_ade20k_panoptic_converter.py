"""ADE20K panoptic converter on a small dataset in the ADE20K layout."""
import json

import numpy as np
from PIL import Image
import tensorflow as tf

from kmax_tf.data import ade20k_panoptic_converter
from kmax_tf.data import build_panoptic_tfrecords
from kmax_tf.data import tfrecord_format


def test_ade20k_layout_and_category_ids(tmp_path):
  root = tmp_path / "ADEChallengeData2016"
  (root / "images" / "validation").mkdir(parents=True)
  (root / "ade20k_panoptic_val").mkdir()
  ids = np.full((6, 7), 10, np.uint32)  # wall (ADE id 0)
  ids[1:3, 1:3] = 20  # person (ADE id 12)
  ids[3:5, 4:7] = 21  # person
  ids[5, 0] = 30  # void (ADE id 255)
  rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1)
  Image.fromarray(rgb.astype(np.uint8)).save(
      root / "ade20k_panoptic_val" / "ADE_val_00000001.png")
  Image.fromarray(np.zeros((6, 7, 3), np.uint8)).save(
      root / "images" / "validation" / "ADE_val_00000001.jpg")
  data = {
      "images": [{"id": "ADE_val_00000001",
                  "file_name": "ADE_val_00000001.jpg"}],
      "annotations": [{"image_id": "ADE_val_00000001",
                       "file_name": "ADE_val_00000001.png",
                       "segments_info": [
                           {"id": 10, "category_id": 0, "iscrowd": 0},
                           {"id": 20, "category_id": 12, "iscrowd": 0},
                           {"id": 21, "category_id": 12, "iscrowd": 0},
                           {"id": 30, "category_id": 255, "iscrowd": 0}]}],
      "categories": [{"id": 0, "name": "wall", "isthing": 0},
                     {"id": 12, "name": "person", "isthing": 1}],
  }
  (root / "ade20k_panoptic_val.json").write_text(json.dumps(data))
  items, descriptor, _ = ade20k_panoptic_converter.conversion_items(
      str(root), "val")
  assert [item.name for item in items] == ["ADE_val_00000001"]
  assert descriptor.name == "ade20k_panoptic"
  written = build_panoptic_tfrecords.build_panoptic_tfrecords(
      "ade20k", str(tmp_path / "out"), root=str(root), splits=["val"],
      num_workers=1, show_progress=False)
  (record,) = list(tf.data.TFRecordDataset(written["val"]))
  label = tfrecord_format.decode_example(record)["label"].numpy()[..., 0]
  expected = np.full((6, 7), 1 * 1000, np.int32)  # wall: training id 1
  expected[1:3, 1:3] = 13 * 1000 + 1  # person: training id 13
  expected[3:5, 4:7] = 13 * 1000 + 2
  expected[5, 0] = 0
  np.testing.assert_array_equal(label, expected)
