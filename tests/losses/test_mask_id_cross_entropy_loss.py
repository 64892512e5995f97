"""Mask-ID cross-entropy against a numpy formula (float64 reference, rtol 1e-5)."""
import numpy as np
import tensorflow as tf

from kmax_tf.losses.mask_id_cross_entropy_loss import mask_id_cross_entropy_loss


def test_matches_formula_and_top_k():
  rng = np.random.RandomState(0)
  logits = rng.randn(2, 40, 6).astype(np.float32)
  slot = rng.randint(-1, 6, (2, 40))          # -1: pixel outside matched masks
  target = np.eye(6, dtype=np.float32)[np.maximum(slot, 0)] * (slot >= 0)[..., None]
  non_void = rng.randint(0, 2, (2, 40)).astype(np.float32)
  x = logits.astype(np.float64)
  log_probs = x - x.max(-1, keepdims=True)
  log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
  losses = -(target * log_probs).sum(-1) * non_void
  for top_k in (1.0, 0.25):
    ours = mask_id_cross_entropy_loss(tf.constant(logits), tf.constant(target),
                                      tf.constant(non_void), top_k, loss_weight=0.3).numpy()
    kept = np.sort(losses, axis=1)[:, ::-1][:, :int(round(40 * top_k))]
    expected = 0.3 * kept.sum(1) / (kept != 0).sum(1)
    np.testing.assert_allclose(ours, expected, rtol=1e-5)
