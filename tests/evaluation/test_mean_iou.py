"""MeanIoU equals a direct numpy confusion-matrix computation."""
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kmax_tf.evaluation.mean_iou import MeanIoU


def _numpy_miou(gts, preds, num_classes, ignored):
  """Reference: np.histogram2d confusion matrix, void predictions in an extra column."""
  gt = np.concatenate([g.ravel() for g in gts]).astype(np.int64)
  pred = np.concatenate([p.ravel() for p in preds]).astype(np.int64)
  keep = gt != ignored
  gt, pred = gt[keep], pred[keep]
  pred = np.where((pred < 0) | (pred >= num_classes) | (pred == ignored), num_classes, pred)
  cm, _, _ = np.histogram2d(gt, pred, bins=[np.arange(num_classes + 1),
                                            np.arange(num_classes + 2)])
  ious = []
  for c in range(num_classes):
    if c == ignored:
      continue
    tp = cm[c, c]
    denominator = cm[c].sum() + cm[:, c].sum() - tp
    if denominator > 0:
      ious.append(tp / denominator)
  return float(np.mean(ious)), cm


def _cityscapes_maps(fixtures_root):
  path = os.path.join(fixtures_root, "cityscapes_frankfurt_sample", "gtFine", "val", "frankfurt",
                      "frankfurt_000000_000294_gtFine_labelTrainIds.png")
  gt = np.asarray(Image.open(path), np.int64)
  rng = np.random.default_rng(1)
  shifted = np.roll(gt, (2, -3), axis=(0, 1))
  noisy = np.where(rng.random(gt.shape) < 0.1, rng.integers(0, 19, gt.shape), shifted)
  noisy[:5, :7] = 255  # predicted void on labelled pixels
  return [gt, gt[::-1]], [noisy, shifted[::-1]]


def test_equals_numpy_on_cityscapes_in_graph(fixtures_root):
  gts, preds = _cityscapes_maps(fixtures_root)
  metric = MeanIoU(num_classes=19, ignored_label=255)

  @tf.function
  def update(gt, pred):
    metric.update_state(gt, pred)

  for g, p in zip(gts, preds):
    update(tf.constant(g), tf.constant(p))
  expected, cm = _numpy_miou(gts, preds, 19, 255)
  assert float(metric.result()) == pytest.approx(expected, abs=1e-12)
  np.testing.assert_array_equal(metric.confusion.numpy(), cm.astype(np.int64))
  assert 0.1 < expected < 0.95


def test_equals_numpy_with_ignored_label_inside_range():
  rng = np.random.default_rng(0)
  gts = [rng.integers(0, 6, (2, 17, 13)) for _ in range(3)]
  preds = [rng.integers(-1, 7, (2, 17, 13)) for _ in range(3)]
  metric = MeanIoU(num_classes=6, ignored_label=0)
  for g, p in zip(gts, preds):
    metric.update_state(g, p)
  expected, _ = _numpy_miou(gts, preds, 6, 0)
  assert float(metric.result()) == pytest.approx(expected, abs=1e-12)
  per_class = metric.per_class_iou()
  assert np.isnan(per_class[0]) and np.nanmean(per_class) == pytest.approx(expected, abs=1e-12)


def test_config_reset_and_errors():
  metric = MeanIoU(num_classes=4, ignored_label=255, name="miou")
  clone = MeanIoU.from_config(metric.get_config())
  assert clone.get_config() == metric.get_config()
  clone.update_state(np.array([[1, 2]]), np.array([[1, 2]]))
  assert float(clone.result()) == 1.0
  clone.reset_state()
  assert not clone.confusion.numpy().any() and float(clone.result()) == 0.0
  with pytest.raises(tf.errors.InvalidArgumentError, match="ground-truth label outside"):
    clone.update_state(np.array([[7]]), np.array([[1]]))
  with pytest.raises(ValueError, match="sample_weight"):
    clone.update_state(np.array([[1]]), np.array([[1]]), sample_weight=np.ones(1))
