"""Shard naming and counts."""
import os

import pytest

from kmax_tf.data import shard_writer
from kmax_tf.data.panoptic_data_error import PanopticDataError


def test_names_and_automatic_counts():
  assert shard_writer.shard_filename("train", 3, 10) == (
      "train-00003-of-00010.tfrecord")
  assert shard_writer.auto_num_shards(1) == 1
  assert shard_writer.auto_num_shards(118287) == 925
  assert shard_writer.auto_num_shards(10**7) == 1000


def test_shards_never_empty(tmp_path, coco_root):
  from kmax_tf.data import coco_panoptic_converter  # pylint: disable=g-import-not-at-top
  items, _, _ = coco_panoptic_converter.conversion_items(coco_root, "val")
  paths = shard_writer.write_tfrecord_shards(
      items[:3], None, str(tmp_path), "val", num_shards=10, num_workers=1,
      show_progress=False)
  assert [os.path.basename(p) for p in paths] == [
      f"val-0000{i}-of-00003.tfrecord" for i in range(3)]
  with pytest.raises(PanopticDataError, match="no images"):
    shard_writer.write_tfrecord_shards([], None, str(tmp_path), "val")
