"""COCO mask AP (Lin et al., "Microsoft COCO", ECCV 2014) through pycocotools.

Instance predictions (binary masks with scores and category ids) are turned into COCO results
(run-length-encoded masks) and scored by pycocotools `COCOeval(iouType="segm")` against either a
COCO instances JSON or ground truth accumulated from masks. Panoptic maps give instances through
`instances_from_panoptic`, which keeps thing classes only, as kMaX-DeepLab / DeepLab2 do when
they report mask AP of a panoptic model.
"""
import contextlib
import io
import json
from typing import Mapping, Optional, Sequence, Union

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm",
              "ARl")


def encode_masks(masks: np.ndarray) -> list:
  """[N, H, W] binary masks -> COCO RLEs with str counts (JSON-ready).

  Args:
    masks: [N, H, W] array of booleans or 0/1 values.

  Returns:
    A list of N RLE dicts {"size": [H, W], "counts": str}.
  """
  masks = np.asarray(masks)
  if masks.ndim != 3:
    raise ValueError(f"Expected [N, H, W] masks, got shape {masks.shape}.")
  if not len(masks):
    return []
  rles = mask_utils.encode(np.asfortranarray(np.transpose(masks, (1, 2, 0)).astype(np.uint8)))
  for rle in rles:
    rle["counts"] = rle["counts"].decode("ascii")
  return rles


def instances_from_panoptic(panoptic: np.ndarray, label_divisor: int, thing_class_ids: Sequence[int],
                            ignored_label: int):
  """Thing instances of a panoptic map (class * label_divisor + instance).

  Returns (panoptic ids [N], masks [N, H, W] bool, class ids [N], is_crowd [N]); instance id 0
  of a thing class is its crowd region (DeepLab2's label convention).

  Args:
    panoptic: integer [H, W] panoptic ids.
    label_divisor: panoptic id = class * label_divisor + instance.
    thing_class_ids: class ids whose segments are instances.
    ignored_label: void class id, never an instance.
  """
  panoptic = np.asarray(panoptic)
  ids = np.unique(panoptic)
  classes = ids // label_divisor
  keep = np.isin(classes, list(thing_class_ids)) & (classes != ignored_label)
  ids, classes = ids[keep], classes[keep]
  masks = panoptic[None] == ids[:, None, None]
  return ids, masks, classes, ids % label_divisor == 0


class CocoMaskAP:
  """Accumulates instance predictions (and optionally ground truth) and runs COCOeval segm.

  Args:
    groundtruth: a COCO instances JSON (path or dict). Without it, ground truth is added image by
      image with `add_groundtruth`.
    verbose: let pycocotools print its summary table.
  """

  def __init__(self, groundtruth: Optional[Union[str, Mapping]] = None, verbose: bool = False):
    self.verbose = verbose
    if isinstance(groundtruth, str):
      with open(groundtruth) as f:
        groundtruth = json.load(f)
    self._fixed_groundtruth = groundtruth
    self.reset_state()

  def reset_state(self):
    self._images = {}
    self._annotations = []
    self._category_ids = set()
    self._results = []
    self._stats = None

  def add_groundtruth(self, image_id: int, masks: np.ndarray, category_ids: Sequence[int],
                      is_crowd: Optional[Sequence[bool]] = None) -> None:
    """Adds one image's ground-truth instances ([N, H, W] masks).

    Args:
      image_id: image id shared with add_predictions.
      masks: [N, H, W] boolean instance masks at the image's size.
      category_ids: [N] category id of each mask (the predictions' id space).
      is_crowd: [N] crowd flags; None means no crowd.
    """
    if self._fixed_groundtruth is not None:
      raise ValueError("Ground truth was given as a COCO JSON; add_groundtruth is not available.")
    masks = np.asarray(masks, bool)
    if image_id in self._images:
      raise ValueError(f"Ground truth for image {image_id} was already added.")
    self._images[image_id] = {"id": image_id, "height": int(masks.shape[1]),
                              "width": int(masks.shape[2])}
    is_crowd = np.zeros(len(masks), bool) if is_crowd is None else np.asarray(is_crowd, bool)
    for rle, category_id, crowd in zip(encode_masks(masks), category_ids, is_crowd):
      self._category_ids.add(int(category_id))
      self._annotations.append({
          "id": len(self._annotations) + 1, "image_id": image_id,
          "category_id": int(category_id), "segmentation": rle, "iscrowd": int(crowd),
          "area": float(mask_utils.area(rle)), "bbox": mask_utils.toBbox(rle).tolist()})
    self._stats = None

  def add_predictions(self, image_id: int, masks: np.ndarray, scores: Sequence[float],
                      category_ids: Sequence[int]) -> None:
    """Adds one image's predicted instances ([M, H, W] masks, scores, category ids).

    Args:
      image_id: image id shared with the ground truth.
      masks: [M, H, W] boolean instance masks at the image's size.
      scores: [M] confidences (higher ranks first in AP).
      category_ids: [M] category id of each mask.
    """
    masks = np.asarray(masks, bool)
    if not len(scores) == len(category_ids) == len(masks):
      raise ValueError("masks, scores and category_ids must have the same length.")
    for rle, score, category_id in zip(encode_masks(masks), scores, category_ids):
      self._results.append({"image_id": image_id, "category_id": int(category_id),
                            "segmentation": rle, "score": float(score)})
    self._stats = None

  def coco_results(self) -> list:
    """The predictions as a COCO results list (what the COCO server and loadRes accept)."""
    # Copies: loadRes writes area / bbox / id into the dicts it is given.
    return [dict(r) for r in self._results]

  def coco_groundtruth(self) -> dict:
    if self._fixed_groundtruth is not None:
      return self._fixed_groundtruth
    return {"images": list(self._images.values()), "annotations": list(self._annotations),
            "categories": [{"id": c} for c in sorted(self._category_ids)]}

  def result(self) -> dict:
    """{AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl} from COCOeval segm."""
    if self._stats is None:
      printed = contextlib.nullcontext() if self.verbose else contextlib.redirect_stdout(
          io.StringIO())
      with printed:
        coco_gt = COCO()
        coco_gt.dataset = self.coco_groundtruth()
        coco_gt.createIndex()
        if not self._results:
          self._stats = {name: -1.0 for name in STAT_NAMES}
          return dict(self._stats)
        coco_dt = coco_gt.loadRes(self.coco_results())
        evaluator = COCOeval(coco_gt, coco_dt, iouType="segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
      self._stats = dict(zip(STAT_NAMES, (float(s) for s in evaluator.stats)))
    return dict(self._stats)
