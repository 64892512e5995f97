"""Dataset descriptors against the datasets' own annotation files."""
import dataclasses
import json
import os

import numpy as np
import pytest

from kmax_tf.data import datasets
from kmax_tf.data.dataset_descriptor import DatasetDescriptor
from kmax_tf.testing import deeplab2_fixtures


def _coco_categories():
  path = os.path.join(deeplab2_fixtures.fixtures_dir(), "coco_val2017_16",
                      "annotations", "panoptic_val2017.json")
  with open(path) as f:
    return json.load(f)["categories"]


def test_coco_matches_panoptic_val2017_categories():
  coco = datasets.get_dataset_descriptor("coco_panoptic")
  categories = _coco_categories()
  assert len(categories) == 133
  assert coco.num_classes == 134  # 133 categories + void (training id 0).
  assert coco.ignore_label == 0
  assert coco.panoptic_label_divisor == coco.label_divisor == 256
  # Training id i + 1 is the i-th category of the official file.
  assert coco.train_id_to_eval_id[1:] == tuple(c["id"] for c in categories)
  assert coco.class_names[1:] == tuple(c["name"] for c in categories)
  things = tuple(i + 1 for i, c in enumerate(categories) if c["isthing"])
  assert coco.class_has_instances_list == things == tuple(range(1, 81))
  assert coco.num_things == 80
  assert len(coco.stuff_class_ids) == 53
  assert coco.class_colors[1] == (220, 20, 60)  # person
  assert coco.splits_to_sizes["val"] == 5000


def test_cityscapes():
  cityscapes = datasets.get_dataset_descriptor("cityscapes_panoptic")
  assert (cityscapes.num_classes, cityscapes.ignore_label,
          cityscapes.panoptic_label_divisor) == (19, 255, 1000)
  assert cityscapes.class_has_instances_list == tuple(range(11, 19))
  assert cityscapes.class_names[11] == "person"
  assert cityscapes.class_names[18] == "bicycle"
  # gtFine label ids of the 19 training ids.
  assert cityscapes.train_id_to_eval_id == (
      7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
  assert len(cityscapes.stuff_class_ids) == 11
  assert cityscapes.splits_to_sizes["val_fine"] == 500


def test_ade20k():
  ade20k = datasets.get_dataset_descriptor("ade20k_panoptic")
  assert (ade20k.num_classes, ade20k.ignore_label,
          ade20k.panoptic_label_divisor) == (151, 0, 1000)
  assert ade20k.num_things == 100
  assert len(ade20k.stuff_class_ids) == 50
  assert ade20k.class_has_instances_list[:4] == (8, 9, 11, 13)
  assert ade20k.class_names[:3] == ("other-objects", "wall", "building")
  assert ade20k.train_id_to_eval_id[:3] == (255, 0, 1)
  assert ade20k.train_id_to_eval_id[150] == 149


@pytest.mark.parametrize("name", ["coco_panoptic", "cityscapes_panoptic",
                                  "ade20k_panoptic"])
def test_descriptor_invariants(name):
  descriptor = datasets.get_dataset_descriptor(name)
  assert descriptor.name == name
  assert len(set(descriptor.class_names)) == descriptor.num_classes
  assert all(len(c) == 3 and all(0 <= v <= 255 for v in c)
             for c in descriptor.class_colors)
  colormap = descriptor.colormap()
  assert colormap.shape == (256, 3) and colormap.dtype == np.uint8
  np.testing.assert_array_equal(colormap[:descriptor.num_classes],
                                descriptor.class_colors)
  assert descriptor.is_thing(descriptor.class_has_instances_list[0])
  assert not descriptor.is_thing(descriptor.stuff_class_ids[0])
  # Frozen, hashable, and reconstructible from its fields.
  with pytest.raises(dataclasses.FrozenInstanceError):
    descriptor.num_classes = 1
  assert DatasetDescriptor(**{
      f.name: getattr(descriptor, f.name)
      for f in dataclasses.fields(descriptor)}) == descriptor
  hash(descriptor)


def test_unknown_dataset_error_lists_known_names():
  with pytest.raises(ValueError, match=r"Unknown dataset 'coco'.*"
                     r"ade20k_panoptic, cityscapes_panoptic, coco_panoptic.*"
                     r"Did you mean 'coco_panoptic'"):
    datasets.get_dataset_descriptor("coco")


def test_register_custom_dataset():
  toy = DatasetDescriptor(
      name="toy_panoptic_for_test", num_classes=3, ignore_label=255,
      panoptic_label_divisor=1000, class_has_instances_list=(2,),
      class_names=("sky", "road", "car"),
      class_colors=((0, 0, 255), (128, 128, 128), (255, 0, 0)),
      train_id_to_eval_id=(1, 2, 3))
  datasets.register_dataset(toy)
  try:
    assert datasets.get_dataset_descriptor("toy_panoptic_for_test") is toy
    with pytest.raises(ValueError, match="already registered"):
      datasets.register_dataset(toy)
  finally:
    datasets._REGISTRY.pop("toy_panoptic_for_test")  # pylint: disable=protected-access


def test_inconsistent_descriptor_is_rejected():
  with pytest.raises(ValueError, match="class_names has 2 entries"):
    DatasetDescriptor(
        name="bad", num_classes=3, ignore_label=255,
        panoptic_label_divisor=1000, class_has_instances_list=(2,),
        class_names=("a", "b"), class_colors=((0, 0, 0),) * 3,
        train_id_to_eval_id=(0, 1, 2))
  with pytest.raises(ValueError, match="class_has_instances_list"):
    DatasetDescriptor(
        name="bad", num_classes=3, ignore_label=255,
        panoptic_label_divisor=1000, class_has_instances_list=(3,),
        class_names=("a", "b", "c"), class_colors=((0, 0, 0),) * 3,
        train_id_to_eval_id=(0, 1, 2))
