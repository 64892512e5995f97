"""Tests of kmax_tf.demo.synthetic_panoptic, the demo's generated COCO-panoptic dataset.

kMaX-DeepLab: Yu et al., ECCV 2022; format: Kirillov et al., CVPR 2019.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from kmax_tf.demo import synthetic_panoptic as sp


def test_scenes_are_deterministic_and_splits_differ():
  a = sp.draw_scene(0, "train", 3)
  b = sp.draw_scene(0, "train", 3)
  np.testing.assert_array_equal(a[0], b[0])
  np.testing.assert_array_equal(a[1], b[1])
  assert a[2] == b[2]
  assert not np.array_equal(a[0], sp.draw_scene(0, "val", 3)[0])


@pytest.mark.parametrize("index", range(20))
def test_segments_describe_the_map(index):
  image, segment_map, segments = sp.draw_scene(0, "train", index, size=96)
  assert image.shape == (96, 96, 3) and image.dtype == np.uint8
  ids = {s["id"] for s in segments}
  assert set(np.unique(segment_map)) == ids  # every pixel belongs to a listed segment
  stuff = [s for s in segments if s["category_id"] in sp.STUFF_CATEGORY_IDS]
  things = [s for s in segments if s["category_id"] in sp.THING_CATEGORY_IDS]
  assert 1 <= len(stuff) <= 2 and len(stuff) + len(things) == len(segments)
  for segment in segments:
    mask = segment_map == segment["id"]
    assert segment["area"] == mask.sum()
    x, y, w, h = segment["bbox"]
    ys, xs = np.nonzero(mask)
    assert (x, y, w, h) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
  for thing in things:
    assert thing["area"] >= sp.MIN_VISIBLE_AREA * 96 * 96


def test_panoptic_label_uses_training_ids_and_instance_numbers():
  _, segment_map, segments = sp.draw_scene(0, "train", 2)
  label = sp.panoptic_label(segment_map, segments)
  classes = set(np.unique(label // 1000))
  assert classes <= set(range(1, 7))
  for segment in segments:
    values = np.unique(label[segment_map == segment["id"]])
    assert len(values) == 1
    is_thing = segment["category_id"] in sp.THING_CATEGORY_IDS
    assert (values[0] % 1000 > 0) == is_thing
  descriptor = sp.descriptor()
  assert descriptor.num_classes == 7 and descriptor.ignore_label == 0
  assert tuple(descriptor.thing_class_ids) == (1, 2, 3)


def test_written_split_converts_and_decodes_bit_exact(tmp_path):
  sp.write_dataset(str(tmp_path / "raw"), (("train", 3),), seed=5, size=64)
  with open(tmp_path / "raw" / "annotations" / "panoptic_train.json", encoding="utf-8") as f:
    data = json.load(f)
  assert [c["name"] for c in data["categories"]] == [c["name"] for c in sp.CATEGORIES]
  png = np.asarray(Image.open(tmp_path / "raw" / "annotations" / "panoptic_train" /
                              data["annotations"][0]["file_name"]), np.int64)
  _, segment_map, _ = sp.draw_scene(5, "train", 0, size=64)
  np.testing.assert_array_equal(png[..., 0] + 256 * png[..., 1] + 65536 * png[..., 2],
                                segment_map)
  subprocess.run([sys.executable, "-m", "kmax_tf.data.build_panoptic_tfrecords",
                  "--format=custom", f"--root={tmp_path / 'raw'}",
                  f"--dataset_name={sp.DATASET_NAME}", "--splits=train",
                  f"--output_dir={tmp_path / 'records'}", "--num_workers=1", "--progress=false"],
                 check=True, capture_output=True, timeout=300)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from kmax_tf.data import tfrecord_format  # pylint: disable=g-import-not-at-top
  records = sorted(os.listdir(tmp_path / "records"))
  decoded = {}
  for name in records:
    if name.endswith(".tfrecord"):
      for serialized in tf.data.TFRecordDataset(str(tmp_path / "records" / name)):
        sample = tfrecord_format.decode_example(serialized, name, True)
        decoded[sample[tfrecord_format.IMAGE_NAME].numpy().decode()] = sample
  assert len(decoded) == 3
  for index in range(3):
    image, segment_map, segments = sp.draw_scene(5, "train", index, size=64)
    sample = decoded[f"train_{index:06d}"]
    np.testing.assert_array_equal(sample[tfrecord_format.IMAGE].numpy(), image)
    np.testing.assert_array_equal(sample[tfrecord_format.LABEL].numpy()[..., 0],
                                  sp.panoptic_label(segment_map, segments))
