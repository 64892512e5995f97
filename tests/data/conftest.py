"""Shared data for the kmax_tf.data tests: real COCO / Cityscapes fixtures."""
import json
import os

import numpy as np
from PIL import Image
import pytest

from kmax_tf.testing import deeplab2_fixtures

def _coco_root():
  return os.path.join(deeplab2_fixtures.fixtures_dir(), "coco_val2017_16")


@pytest.fixture(scope="session")
def coco_root():
  return _coco_root()


@pytest.fixture(scope="session")
def cityscapes_root():
  return os.path.join(deeplab2_fixtures.fixtures_dir(),
                      "cityscapes_frankfurt_sample")


@pytest.fixture(scope="session")
def expected_coco_labels():
  """{image stem: [H, W] int32 label} straight from the PNGs and JSON.

  Written independently of the converter: the JSON's category order gives
  training ids 1..133 (0 = void), crowd pixels are void, thing instances are
  numbered per category in segments_info order, divisor 256.
  """
  root = _coco_root()
  with open(os.path.join(root, "annotations", "panoptic_val2017.json")) as f:
    data = json.load(f)
  train_id = {c["id"]: i + 1 for i, c in enumerate(data["categories"])}
  is_thing = {c["id"]: bool(c["isthing"]) for c in data["categories"]}
  labels = {}
  for annotation in data["annotations"]:
    rgb = np.array(Image.open(os.path.join(
        root, "annotations", "panoptic_val2017", annotation["file_name"])),
                   dtype=np.uint32)
    ids = rgb[..., 0] | (rgb[..., 1] << 8) | (rgb[..., 2] << 16)
    label = np.zeros(ids.shape, np.int32)
    counters = {}
    for segment in annotation["segments_info"]:
      where = ids == segment["id"]
      category = segment["category_id"]
      if segment["iscrowd"]:
        continue
      instance = 0
      if is_thing[category]:
        counters[category] = counters.get(category, 0) + 1
        instance = counters[category]
      label[where] = train_id[category] * 256 + instance
    labels[os.path.splitext(annotation["file_name"])[0]] = label
  return labels


@pytest.fixture(scope="session")
def coco_records(tmp_path_factory):
  """The 16 COCO val images converted once (4 shards) by the converter."""
  from kmax_tf.data import build_panoptic_tfrecords  # pylint: disable=g-import-not-at-top
  output_dir = str(tmp_path_factory.mktemp("coco_records"))
  build_panoptic_tfrecords.build_panoptic_tfrecords(
      "coco", output_dir, root=_coco_root(), splits=["val"], num_shards=4,
      num_workers=1, show_progress=False)
  return output_dir
