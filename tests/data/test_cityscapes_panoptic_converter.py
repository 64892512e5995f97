"""Cityscapes converter on the real frankfurt sample (cityscapesScripts GT)."""
import os

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from kmax_tf.data import build_panoptic_tfrecords
from kmax_tf.data import cityscapes_panoptic_converter
from kmax_tf.data import tfrecord_format
from kmax_tf.data.panoptic_data_error import PanopticDataError

_NAME = "frankfurt_000000_000294"
# gtFine label ids of the 19 training ids (cityscapesScripts' label table);
# the last 8 are the thing classes (person .. bicycle).
_LABEL_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
              31, 32, 33)
_THING_LABEL_IDS = (24, 25, 26, 27, 28, 31, 32, 33)


def _expected_label(root):
  """The panoptic label from gtFine instanceIds alone (no JSON, no PNG).

  instanceIds holds label_id * 1000 + k for thing instances and label_id for
  everything else (crowd thing regions included). Training ids follow the
  official label table (the 19 evaluated label ids; all others are void);
  instances are numbered 1, 2, ... per class in increasing instanceIds order;
  crowd thing regions are void.
  """
  folder = os.path.join(root, "gtFine", "val", "frankfurt")
  instance_ids = np.array(Image.open(os.path.join(
      folder, _NAME + "_gtFine_instanceIds.png"))).astype(np.int64)
  label_ids = np.where(instance_ids >= 1000, instance_ids // 1000,
                       instance_ids)
  to_train = np.full(256, 255, np.int64)
  to_train[list(_LABEL_IDS)] = np.arange(len(_LABEL_IDS))
  label = to_train[label_ids] * 1000
  for label_id in _THING_LABEL_IDS:
    members = sorted(v for v in np.unique(instance_ids)
                     if v >= 1000 and v // 1000 == label_id)
    for rank, value in enumerate(members):
      label[instance_ids == value] += rank + 1
    label[instance_ids == label_id] = 255 * 1000  # crowd -> void
  return label.astype(np.int32)


@pytest.mark.parametrize("json_kind", ["_trainId", ""])
def test_label_decodes_bit_for_bit(tmp_path, cityscapes_root, json_kind):
  derived = os.path.join(cityscapes_root, "derived_by_cityscapesscripts")
  written = build_panoptic_tfrecords.build_panoptic_tfrecords(
      "cityscapes", str(tmp_path), splits=["val"],
      image_dir=os.path.join(cityscapes_root, "leftImg8bit", "val"),
      panoptic_json=os.path.join(
          derived, f"cityscapes_panoptic_val{json_kind}.json"),
      panoptic_dir=os.path.join(derived,
                                f"cityscapes_panoptic_val{json_kind}"),
      num_workers=1, show_progress=False)
  assert [os.path.basename(p) for p in written["val"]] == [
      "val_fine-00000-of-00001.tfrecord"]
  records = list(tf.data.TFRecordDataset(written["val"]))
  assert len(records) == 1
  sample = tfrecord_format.decode_example(records[0])
  assert sample["image_name"].numpy() == _NAME.encode()
  label = sample["label"].numpy()[..., 0]
  expected = _expected_label(cityscapes_root)
  assert label.shape == (128, 256)
  np.testing.assert_array_equal(label, expected)
  assert len(np.unique(label[label % 1000 > 0])) >= 2  # real instances
  image = np.array(Image.open(os.path.join(
      cityscapes_root, "leftImg8bit", "val", "frankfurt",
      _NAME + "_leftImg8bit.png")))
  np.testing.assert_array_equal(sample["image"].numpy(), image)


def test_unrelated_categories_are_rejected():
  descriptor_categories = [{"id": 0, "name": "unicorn"}]
  with pytest.raises(PanopticDataError, match="neither Cityscapes"):
    cityscapes_panoptic_converter.category_mapping(
        cityscapes_panoptic_converter.datasets.get_dataset_descriptor(
            "cityscapes_panoptic"), descriptor_categories, "x.json")
