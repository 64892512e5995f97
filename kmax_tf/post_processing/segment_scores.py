"""Per-segment scores of a post-processed panoptic map."""
from typing import Dict

import numpy as np


def segment_scores(panoptic: np.ndarray, scores: np.ndarray) -> Dict[int, float]:
  """Panoptic id -> the highest per-pixel score of its pixels.

  The mask-wise post-processor gives every pixel of a segment the same score
  (its slot's class confidence), so this is that segment's score.

  Args:
    panoptic: [H, W] integer panoptic ids (class * label_divisor + instance).
    scores: [H, W] per-pixel scores, the post-processor's `instance_scores`.

  Returns:
    {panoptic id: score} for every id present, void included.
  """
  if panoptic.shape != scores.shape:
    raise ValueError(f"segment_scores: panoptic map of shape {panoptic.shape} and scores of "
                     f"shape {scores.shape} must have the same shape.")
  ids, inverse = np.unique(panoptic, return_inverse=True)
  best = np.full(len(ids), -np.inf)
  np.maximum.at(best, inverse.ravel(), scores.ravel())
  return {int(i): float(b) for i, b in zip(ids, best)}
