"""Panoptic labels from COCO-panoptic-format annotations (PNG + segments_info).

Format: Kirillov et al., "Panoptic Segmentation", CVPR 2019 (COCO panoptic:
an RGB PNG whose colour encodes a segment id R + 256 G + 65536 B, and a JSON
list `segments_info` giving each segment's category, area and crowd flag).

The label written to the TFRecords follows DeepLab2's converters:
  * segment category id -> training class id through a mapping;
  * pixels of no listed segment are void: class `ignore_label`, instance 0;
  * non-crowd thing segments get instance ids 1, 2, ... per class, in
    segments_info order; stuff segments get instance 0;
  * crowd thing segments get instance 0 and, with treat_crowd_as_ignore (the
    default, as in DeepLab2), class `ignore_label` too;
  * id = class * label_divisor + instance, int32.
"""

import collections
import io
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np
from PIL import Image

from kmax_tf.data.panoptic_data_error import PanopticDataError


class PanopticLabelEncoder:
  """Turns a COCO-panoptic PNG + segments_info into a panoptic id map.

  Plain Python data only, so it pickles to converter worker processes.
  """

  def __init__(self, category_to_train_id: Mapping[int, int],
               thing_train_ids: Iterable[int], ignore_label: int,
               label_divisor: int, treat_crowd_as_ignore: bool = True,
               check_area: bool = True):
    """Creates the encoder.

    Args:
      category_to_train_id: Dataset category id (segments_info
        "category_id") -> training class id.
      thing_train_ids: Training class ids that have instances.
      ignore_label: Training class id of void pixels.
      label_divisor: panoptic id = class id * label_divisor + instance id.
      treat_crowd_as_ignore: Whether crowd pixels become void (class
        ignore_label) instead of keeping their class with instance 0.
      check_area: Whether a segment's "area" (when given) must equal its
        pixel count, as COCO and cityscapesScripts guarantee.
    """
    self.category_to_train_id = {int(k): int(v)
                                 for k, v in category_to_train_id.items()}
    self.thing_train_ids = frozenset(int(t) for t in thing_train_ids)
    self.ignore_label = int(ignore_label)
    self.label_divisor = int(label_divisor)
    self.treat_crowd_as_ignore = bool(treat_crowd_as_ignore)
    self.check_area = bool(check_area)

  @staticmethod
  def read_segment_ids(png_data: bytes, source: str = "<png>") -> np.ndarray:
    """Decodes COCO-panoptic PNG bytes into [H, W] int32 segment ids.

    Args:
      png_data: bytes of an RGB PNG, id = R + 256 G + 256^2 B.
      source: the PNG's name for error messages.
    """
    with Image.open(io.BytesIO(png_data)) as png:
      if png.mode != "RGB":
        raise PanopticDataError(
            f"{source}: panoptic annotation PNG must be RGB, got mode "
            f"{png.mode}")
      rgb = np.asarray(png, dtype=np.int32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]

  def encode(self, segment_ids: np.ndarray,
             segments: Sequence[Mapping[str, object]],
             source: Optional[str] = None) -> np.ndarray:
    """Returns the [H, W] int32 panoptic id map.

    Args:
      segment_ids: [H, W] integer segment ids (read_segment_ids).
      segments: The image's segments_info entries ("id", "category_id",
        optional "iscrowd" and "area").
      source: Annotation file named in errors.

    Raises:
      PanopticDataError: unknown category, area mismatch, crowd stuff
        segment, or more instances of a class than label_divisor allows.
    """
    source = source or "<annotation>"
    semantic = np.full(segment_ids.shape, self.ignore_label, np.int64)
    instance = np.zeros(segment_ids.shape, np.int64)
    instance_count = collections.Counter()
    for segment in segments:
      pixels = segment_ids == int(segment["id"])
      category = int(segment["category_id"])
      if category not in self.category_to_train_id:
        raise PanopticDataError(
            f"{source}: segment {segment['id']} has category_id {category}, "
            f"which is not a category of the dataset (known: "
            f"{sorted(self.category_to_train_id)[:20]}...)")
      if self.check_area and "area" in segment:
        area = int(np.count_nonzero(pixels))
        if area != int(segment["area"]):
          raise PanopticDataError(
              f"{source}: segment {segment['id']} lists area "
              f"{segment['area']} but has {area} pixels in the PNG")
      class_id = self.category_to_train_id[category]
      semantic[pixels] = class_id
      is_crowd = bool(segment.get("iscrowd", 0))
      if class_id in self.thing_train_ids:
        if is_crowd:
          if self.treat_crowd_as_ignore:
            semantic[pixels] = self.ignore_label
          continue
        instance_count[class_id] += 1
        if instance_count[class_id] >= self.label_divisor:
          raise PanopticDataError(
              f"{source}: more than {self.label_divisor - 1} instances of "
              f"class {class_id}; use a larger label divisor")
        instance[pixels] = instance_count[class_id]
      elif is_crowd:
        raise PanopticDataError(
            f"{source}: segment {segment['id']} of stuff category {category} "
            "is marked iscrowd; only thing segments can be crowd regions")
    panoptic = semantic * self.label_divisor + instance
    if panoptic.max(initial=0) > np.iinfo(np.int32).max:
      raise PanopticDataError(f"{source}: panoptic ids overflow int32")
    return panoptic.astype(np.int32)
