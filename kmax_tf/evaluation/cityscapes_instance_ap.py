"""Cityscapes instance-level AP (Cordts et al., "The Cityscapes Dataset", CVPR 2016).

The convention of the Cityscapes benchmark for thing classes, as its official script
(cityscapesScripts evalInstanceLevelSemanticLabeling) computes it:
  - the 8 classes with instances that are evaluated (person, rider, car, truck, bus, train,
    motorcycle, bicycle; label ids, not train ids);
  - ground truth is an instanceIds map: label * 1000 + k for instances, the bare label id for
    groups (e.g. "car group") and stuff;
  - ground-truth instances below `min_region_size` (100) pixels, groups, and void pixels are
    ignored: a prediction with no match lying on them by more than the overlap threshold is no
    false positive;
  - predictions are independent binary masks with a label id and a confidence; a prediction
    matches a ground-truth instance of its label when IoU > threshold; when several match one
    instance, the best-scored is the true positive and the others are false positives;
  - AP per class and threshold integrates the precision / recall curve step-wise with
    cityscapesScripts' rule, for thresholds 0.50:0.05:0.95; "AP" is the mean over classes and
    thresholds, "AP50" over classes at 0.5 (classes without ground truth anywhere are left out).
Only what a match needs is kept per image (counts and overlaps), never the masks.
"""
from typing import Sequence

import numpy as np

# Cityscapes label ids with hasInstances and not ignoreInEval.
CITYSCAPES_INSTANCE_LABEL_IDS = (24, 25, 26, 27, 28, 31, 32, 33)
# Cityscapes label ids with ignoreInEval (license plate, -1, never occurs in instanceIds maps).
CITYSCAPES_VOID_LABEL_IDS = (0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30)
_INSTANCE_OFFSET = 1000


class CityscapesInstanceAP:
  """Accumulates images and returns {"AP", "AP50", "per_class": {label_id: {"AP", "AP50"}}}.

  Args:
    label_ids: the evaluated label ids, default Cityscapes' eight.
    void_label_ids: instanceIds values that are void.
    min_region_size: ground-truth instances with fewer pixels are ignored.
    overlaps: IoU thresholds, default numpy.arange(0.5, 1.0, 0.05) as the official script.
  """

  def __init__(self, label_ids: Sequence[int] = CITYSCAPES_INSTANCE_LABEL_IDS,
               void_label_ids: Sequence[int] = CITYSCAPES_VOID_LABEL_IDS,
               min_region_size: int = 100, overlaps: Sequence[float] = None):
    self.label_ids = tuple(int(i) for i in label_ids)
    self.void_label_ids = tuple(int(i) for i in void_label_ids)
    self.min_region_size = int(min_region_size)
    self.overlaps = np.arange(0.5, 1.0, 0.05) if overlaps is None else np.asarray(overlaps)
    self.reset_state()

  def reset_state(self):
    # One entry per image: {label: (gt list, prediction list)}.
    self._images = []

  def add_image(self, gt_instance_ids: np.ndarray, pred_masks: np.ndarray,
                pred_label_ids: Sequence[int], pred_scores: Sequence[float]) -> None:
    """Adds one image: its instanceIds map [H, W] and predictions ([M, H, W] masks).

    Args:
      gt_instance_ids: integer [H, W] Cityscapes instanceIds map (label id *
        1000 + k for instances, the bare label id elsewhere).
      pred_masks: [M, H, W] boolean predicted masks (may overlap).
      pred_label_ids: [M] Cityscapes label ids (not train ids) of the masks.
      pred_scores: [M] confidences.
    """
    gt = np.asarray(gt_instance_ids, np.int64)
    pred_masks = np.asarray(pred_masks, bool).reshape((-1,) + gt.shape)
    if not len(pred_masks) == len(pred_label_ids) == len(pred_scores):
      raise ValueError("pred_masks, pred_label_ids and pred_scores must have the same length.")
    values, counts = np.unique(gt, return_counts=True)
    value_label = np.where(values >= _INSTANCE_OFFSET, values // _INSTANCE_OFFSET, values)
    image = {}
    for label in self.label_ids:
      gts = [(int(v), int(c)) for v, c, l in zip(values, counts, value_label) if l == label]
      image[label] = (gts, [])
    void = np.isin(gt, self.void_label_ids)
    for mask, label, score in zip(pred_masks, pred_label_ids, pred_scores):
      label = int(label)
      area = int(np.count_nonzero(mask))
      if label not in image or area == 0:
        continue
      under, overlap = np.unique(gt[mask], return_counts=True)
      overlap_of = dict(zip(under.tolist(), overlap.tolist()))
      matched = [(inst_id, count, overlap_of[inst_id]) for inst_id, count in image[label][0]
                 if inst_id in overlap_of]
      image[label][1].append({"score": float(score), "area": area,
                              "void": int(np.count_nonzero(void & mask)), "gts": matched})
    self._images.append(image)

  def _ap(self, label: int, threshold: float) -> float:
    labels_true, scores, hard_false_negatives = [], [], 0
    have_gt = have_pred = False
    for image in self._images:
      gts, preds = image[label]
      kept = [(i, c) for i, c in gts if i >= _INSTANCE_OFFSET and c >= self.min_region_size]
      have_gt |= bool(kept)
      have_pred |= bool(preds)
      for inst_id, count in kept:
        matched_scores = [p["score"] for p in preds for g, _, inter in p["gts"]
                          if g == inst_id and inter / (count + p["area"] - inter) > threshold]
        if not matched_scores:
          hard_false_negatives += 1
          continue
        best = max(matched_scores)
        labels_true.append(1)
        scores.append(best)
        matched_scores.remove(best)
        labels_true.extend([0] * len(matched_scores))
        scores.extend(matched_scores)
      for p in preds:
        if any(inter / (count + p["area"] - inter) > threshold for _, count, inter in p["gts"]):
          continue
        ignored = p["void"]
        for inst_id, count, inter in p["gts"]:
          if inst_id < _INSTANCE_OFFSET:
            ignored += inter
          if count < self.min_region_size:
            ignored += inter
        if ignored / p["area"] <= threshold:
          labels_true.append(0)
          scores.append(p["score"])
    if not have_gt:
      return float("nan")
    if not have_pred:
      return 0.0
    return _step_ap(np.asarray(labels_true, np.float64), np.asarray(scores, np.float64),
                    hard_false_negatives)

  def result(self) -> dict:
    ap = np.array([[self._ap(label, t) for t in self.overlaps] for label in self.label_ids])
    at_50 = np.flatnonzero(np.isclose(self.overlaps, 0.5))
    with np.errstate(invalid="ignore"):
      out = {"AP": _nanmean(ap), "AP50": _nanmean(ap[:, at_50]), "per_class": {}}
      for k, label in enumerate(self.label_ids):
        out["per_class"][label] = {"AP": float(np.mean(ap[k])), "AP50": float(np.mean(ap[k, at_50]))}
    return out


def _nanmean(values: np.ndarray) -> float:
  values = values[~np.isnan(values)]
  return float(np.mean(values)) if values.size else float("nan")


def _step_ap(labels_true: np.ndarray, scores: np.ndarray, hard_false_negatives: int) -> float:
  """cityscapesScripts' AP: precision / recall at every distinct score, step-wise integrated."""
  if not labels_true.size:
    # Only predictions that were all ignored: the curve is the artificial point alone.
    return 0.0
  order = np.argsort(scores, kind="stable")
  scores, labels_true = scores[order], labels_true[order]
  below = np.concatenate([[0.0], np.cumsum(labels_true)])
  total_true = below[-1]
  _, starts = np.unique(scores, return_index=True)
  tp = total_true - below[starts]
  fp = len(scores) - starts - tp
  fn = below[starts] + hard_false_negatives
  precision = np.append(tp / (tp + fp), 1.0)
  recall = np.append(tp / (tp + fn), 0.0)
  previous = np.concatenate([recall[:1], recall[:-1]])
  following = np.append(recall[1:], 0.0)
  return float(np.dot(precision, 0.5 * previous - 0.5 * following))
