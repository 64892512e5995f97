"""Writes predictions in the Cityscapes benchmark result formats (Cordts et al., CVPR 2016).

From panoptic maps over Cityscapes train ids (class * label_divisor + instance) it writes what
cityscapesScripts and the Cityscapes server read, with label ids (not train ids):
  - semantic/<image>.png: 8-bit label ids (pixel-level task; void becomes 0, "unlabeled");
  - panoptic.json + panoptic/<image>.png: COCO panoptic results with Cityscapes label ids as
    category ids and the image name (e.g. "frankfurt_000000_000294") as image id;
  - instance/<image>.txt + instance/masks/<image>_<k>.png: one line "masks/<png> <label id>
    <confidence>" per thing instance, with a binary mask each (instance-level task).
Every file is written under a temporary name and renamed into place.
"""
import os
from typing import Mapping, Optional, Sequence

import numpy as np

from kmax_tf.evaluation import panoptic_png
from kmax_tf.evaluation.coco_panoptic_writer import CocoPanopticWriter

CITYSCAPES_TRAIN_ID_TO_LABEL_ID = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
                                   31, 32, 33)
_NAMES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
          "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car", "truck",
          "bus", "train", "motorcycle", "bicycle")
CITYSCAPES_THING_TRAIN_IDS = tuple(range(11, 19))
CITYSCAPES_CATEGORIES = tuple(
    {"id": label_id, "name": name, "isthing": int(train_id in CITYSCAPES_THING_TRAIN_IDS)}
    for train_id, (label_id, name) in enumerate(zip(CITYSCAPES_TRAIN_ID_TO_LABEL_ID, _NAMES)))


class CityscapesResultWriter:
  """Writes semantic, panoptic and (with scores) instance results under `output_dir`.

  Args:
    output_dir: root folder of the results.
    label_divisor: panoptic id = train id * label_divisor + instance.
    ignored_label: the void train id.
    train_id_to_label_id: Cityscapes label id of each train id.
    thing_train_ids: train ids whose segments are instances.
    categories: COCO category dicts for the panoptic JSON (default: Cityscapes' 19).
  """

  def __init__(self, output_dir: str, label_divisor: int = 1000, ignored_label: int = 255,
               train_id_to_label_id: Sequence[int] = CITYSCAPES_TRAIN_ID_TO_LABEL_ID,
               thing_train_ids: Sequence[int] = CITYSCAPES_THING_TRAIN_IDS,
               categories: Optional[Sequence[Mapping]] = None):
    self.output_dir = output_dir
    self.label_divisor = int(label_divisor)
    self.ignored_label = int(ignored_label)
    self.train_id_to_label_id = tuple(int(i) for i in train_id_to_label_id)
    self.thing_train_ids = tuple(int(i) for i in thing_train_ids)
    self.panoptic = CocoPanopticWriter(
        os.path.join(output_dir, "panoptic.json"), categories or CITYSCAPES_CATEGORIES,
        self.train_id_to_label_id, label_divisor, ignored_label,
        output_folder=os.path.join(output_dir, "panoptic"))

  def add(self, image_name: str, panoptic: np.ndarray,
          instance_scores: Optional[Mapping[int, float]] = None) -> None:
    """Writes one image; `instance_scores` (panoptic id -> confidence) enables instance output.

    Args:
      image_name: Cityscapes image name, e.g. "frankfurt_000000_000294".
      panoptic: integer [H, W] panoptic ids over train ids
        (train id * label_divisor + instance).
      instance_scores: panoptic id -> confidence of every thing segment; None
        writes no instance results.
    """
    panoptic = np.asarray(panoptic, np.int64)
    train_ids = panoptic // self.label_divisor
    lookup = np.zeros(max(len(self.train_id_to_label_id), self.ignored_label + 1), np.uint8)
    lookup[:len(self.train_id_to_label_id)] = self.train_id_to_label_id
    lookup[self.ignored_label] = 0
    if train_ids.min() < 0 or train_ids.max() >= len(lookup):
      raise ValueError(f"Image {image_name!r}: train ids must lie in [0, {len(lookup)}).")
    panoptic_png.atomic_write_bytes(
        os.path.join(self.output_dir, "semantic", f"{image_name}.png"),
        panoptic_png.encode_png(lookup[train_ids]))
    self.panoptic.add(image_name, panoptic, file_name=f"{image_name}.png")
    if instance_scores is None:
      return
    ids = [i for i in np.unique(panoptic).tolist()
           if i // self.label_divisor in self.thing_train_ids]
    missing = [i for i in ids if i not in instance_scores]
    if missing:
      raise ValueError(f"Image {image_name!r}: no score for thing segments {missing}.")
    masks = panoptic[None] == np.asarray(ids, np.int64).reshape(-1, 1, 1)
    labels = [self.train_id_to_label_id[i // self.label_divisor] for i in ids]
    self.add_instances(image_name, masks, labels, [instance_scores[i] for i in ids])

  def add_instances(self, image_name: str, masks: np.ndarray, label_ids: Sequence[int],
                    scores: Sequence[float]) -> None:
    """Writes one image's instance predictions (masks may overlap) with Cityscapes label ids.

    Args:
      image_name: Cityscapes image name.
      masks: [M, H, W] boolean instance masks.
      label_ids: [M] Cityscapes label ids (not train ids).
      scores: [M] confidences.
    """
    masks = np.asarray(masks, bool)
    if not len(masks) == len(label_ids) == len(scores):
      raise ValueError("masks, label_ids and scores must have the same length.")
    folder = os.path.join(self.output_dir, "instance")
    lines = []
    for k, (mask, label_id, score) in enumerate(zip(masks, label_ids, scores)):
      name = f"masks/{image_name}_{k}.png"
      panoptic_png.atomic_write_bytes(os.path.join(folder, name),
                                      panoptic_png.encode_png(mask.astype(np.uint8) * 255))
      # repr() round-trips the float exactly, so file-based scoring sees the same confidences.
      lines.append(f"{name} {int(label_id)} {float(score)!r}\n")
    panoptic_png.atomic_write_bytes(os.path.join(folder, f"{image_name}.txt"),
                                    "".join(lines).encode("utf-8"))

  def close(self) -> None:
    """Writes the panoptic JSON."""
    self.panoptic.close()

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, tb):
    if exc_type is None:
      self.close()
    return False
