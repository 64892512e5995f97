"""Semantic loss against a numpy formula (float64 reference, rtol 1e-5)."""
import numpy as np
import tensorflow as tf

from kmax_tf.losses.semantic_loss import semantic_loss


def _reference(logits, labels, weights, ignore_label):
  x = logits.astype(np.float64)
  log_probs = x - x.max(-1, keepdims=True)
  log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
  valid = (labels != ignore_label) & (labels < x.shape[-1])
  picked = np.take_along_axis(log_probs, np.minimum(labels, x.shape[-1] - 1)[..., None], -1)[..., 0]
  losses = -picked * weights * valid
  losses = losses.reshape(len(x), -1)
  return losses.sum(1) / (losses != 0).sum(1)


def test_downsampled_labels_and_ignore():
  rng = np.random.RandomState(0)
  logits = rng.randn(2, 5, 5, 4).astype(np.float32)
  labels = rng.randint(0, 4, (2, 9, 9)).astype(np.int32)
  labels[:, :4] = 255
  weights = rng.rand(2, 9, 9).astype(np.float32) + 0.5
  ours = semantic_loss(tf.constant(logits), tf.constant(labels), tf.constant(weights), 4, 255,
                       loss_weight=2.0).numpy()
  expected = _reference(logits, labels[:, ::2, ::2], weights[:, ::2, ::2], 255)
  np.testing.assert_allclose(ours, 2.0 * expected, rtol=1e-5)


def test_sampled_pixels():
  rng = np.random.RandomState(1)
  logits = rng.randn(2, 4, 4, 3).astype(np.float32)
  labels = rng.randint(0, 3, (2, 4, 4)).astype(np.int32)
  weights = np.ones((2, 4, 4), np.float32)
  indices = np.stack([rng.permutation(16)[:6] for _ in range(2)])
  ours = semantic_loss(tf.constant(logits), tf.constant(labels), tf.constant(weights), 3, 0,
                       sample_indices=tf.constant(indices)).numpy()
  for b in range(2):
    flat = (logits[b].reshape(16, 3)[indices[b]], labels[b].reshape(16)[indices[b]])
    expected = _reference(flat[0][None], flat[1][None], np.ones((1, 6)), 0)
    np.testing.assert_allclose(ours[b], expected[0], rtol=1e-5)
