"""PQ-style class and mask dice terms against numpy formulas (float64 reference, rtol 1e-5)."""
import numpy as np
import tensorflow as tf

from kmax_tf.losses.pq_style_loss import pq_style_class_term, pq_style_mask_dice_term


def _softmax(x):
  x = x - x.max(-1, keepdims=True)
  return np.exp(x) / np.exp(x).sum(-1, keepdims=True)


def test_class_term():
  rng = np.random.RandomState(0)
  logits = rng.randn(2, 6, 5).astype(np.float32)
  classes = rng.randint(0, 5, (2, 6))   # 4 = void
  target = np.eye(5, dtype=np.float32)[classes]
  weight = rng.rand(2, 6).astype(np.float32)
  ours = pq_style_class_term(tf.constant(logits), tf.constant(target), tf.constant(weight), 0.75,
                             loss_weight=3.0).numpy()
  ce = -np.log((_softmax(logits.astype(np.float64)) * target).sum(-1))
  alpha = np.where(classes == 4, 0.25, 0.75)
  np.testing.assert_allclose(ours, 3.0 * (alpha * ce * weight).mean(1), rtol=1e-5)


def test_mask_dice_term():
  rng = np.random.RandomState(1)
  logits = rng.randn(2, 30, 4).astype(np.float32)
  target = np.eye(4, dtype=np.float32)[rng.randint(0, 4, (2, 30))]
  target[:, :, 3] = 0     # slot 3 unmatched
  in_mask = target.sum(-1)
  weight = np.array([[0.5, 0.2, 1.0, 0.0], [1e-5, 0.3, 0.9, 0.0]], np.float32)
  ours = pq_style_mask_dice_term(tf.constant(logits), tf.constant(target), tf.constant(in_mask),
                                 tf.constant(weight), 0.75, loss_weight=3.0).numpy()
  probs = _softmax(logits.astype(np.float64)) * in_mask[..., None]
  dice = (2 * (probs * target).sum(1) + 1) / (probs.sum(1) + target.sum(1) + 1)
  np.testing.assert_allclose(ours, ((1 - dice) * weight).sum(1) * 3.0 * 0.75 / 4, rtol=1e-5)
