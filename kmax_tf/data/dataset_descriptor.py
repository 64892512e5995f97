"""Description of a panoptic segmentation dataset's label space.

Panoptic label encoding: Kirillov et al., "Panoptic Segmentation", CVPR 2019;
a panoptic id is `class_id * panoptic_label_divisor + instance_id`, as in
DeepLab2.

Everything downstream (model, losses, post-processing, evaluation) reads the
label space from one of these objects instead of testing the dataset name.
"""

import dataclasses
import types
from typing import Mapping, Tuple

import numpy as np

Color = Tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class DatasetDescriptor:
  """Label space of one dataset, indexed by training class id.

  Attributes:
    name: Dataset name used in configs, e.g. "coco_panoptic".
    num_classes: Number of training class ids (semantic logits), including a
      void class when the dataset has one at id 0 (COCO, ADE20K).
    ignore_label: Class id ignored by losses and metrics.
    panoptic_label_divisor: panoptic id = class id * divisor + instance id.
    class_has_instances_list: Training ids of "thing" classes, ascending.
    class_names: Name of every training id (length num_classes).
    class_colors: RGB visualization colour of every training id.
    train_id_to_eval_id: Category id the dataset's official tools use for
      every training id (COCO category ids, Cityscapes label ids, ...).
    splits_to_sizes: Number of examples per split.
  """
  name: str
  num_classes: int
  ignore_label: int
  panoptic_label_divisor: int
  class_has_instances_list: Tuple[int, ...]
  class_names: Tuple[str, ...]
  class_colors: Tuple[Color, ...]
  train_id_to_eval_id: Tuple[int, ...]
  splits_to_sizes: Mapping[str, int] = dataclasses.field(
      default_factory=dict, hash=False)

  def __post_init__(self):
    for field_name in ("class_names", "class_colors", "train_id_to_eval_id"):
      length = len(getattr(self, field_name))
      if length != self.num_classes:
        raise ValueError(
            f"{self.name}: {field_name} has {length} entries, "
            f"expected num_classes={self.num_classes}")
    things = tuple(self.class_has_instances_list)
    if list(things) != sorted(set(things)) or any(
        not 0 <= t < self.num_classes for t in things):
      raise ValueError(
          f"{self.name}: class_has_instances_list must be ascending, unique "
          f"training ids in [0, {self.num_classes})")
    if self.panoptic_label_divisor <= 0:
      raise ValueError(f"{self.name}: panoptic_label_divisor must be > 0")
    # Normalize containers so the (frozen) descriptor is truly immutable.
    object.__setattr__(self, "class_has_instances_list", things)
    object.__setattr__(self, "class_names", tuple(self.class_names))
    object.__setattr__(self, "class_colors",
                       tuple(tuple(c) for c in self.class_colors))
    object.__setattr__(self, "train_id_to_eval_id",
                       tuple(self.train_id_to_eval_id))
    object.__setattr__(self, "splits_to_sizes",
                       types.MappingProxyType(dict(self.splits_to_sizes)))

  @property
  def label_divisor(self) -> int:
    """Alias of panoptic_label_divisor."""
    return self.panoptic_label_divisor

  @property
  def thing_class_ids(self) -> Tuple[int, ...]:
    return self.class_has_instances_list

  @property
  def stuff_class_ids(self) -> Tuple[int, ...]:
    """Non-thing training ids, excluding the ignore label."""
    things = set(self.class_has_instances_list)
    return tuple(i for i in range(self.num_classes)
                 if i not in things and i != self.ignore_label)

  @property
  def num_things(self) -> int:
    return len(self.class_has_instances_list)

  def is_thing(self, class_id: int) -> bool:
    return class_id in self.class_has_instances_list

  def colormap(self) -> np.ndarray:
    """[max(256, num_classes), 3] uint8 colours indexed by training id."""
    colors = np.zeros((max(256, self.num_classes), 3), np.uint8)
    colors[:self.num_classes] = np.asarray(self.class_colors, np.uint8)
    return colors
