"""Instance discrimination losses against direct reference formulas.

The pixel contrastive loss avoids DeepLab2's explicit K x K target matrix; here
it is compared, value and gradient, with that direct form: targets = rows of
same-mask indicators normalized to sum 1, softmax cross-entropy over K x K
similarity logits (whose TF gradient is what DeepLab2 trains with, including
the softmax gradient on all-zero rows of sampled void pixels). Both are float32
with different summation orders: rtol 1e-5 on values, 1e-5 of the largest
gradient entry on gradients.
"""
import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.losses import instance_discrimination_loss
from kmax_tf.losses.instance_discrimination_loss import (
    mask_average_instance_discrimination_loss, pixel_contrastive_instance_discrimination_loss)


def _case(seed=0, batch=2, pixels=60, masks=5, channels=8, samples=40):
  rng = np.random.RandomState(seed)
  mask_id = rng.randint(-1, masks, (batch, pixels))   # -1: void pixel
  one_hot = tf.one_hot(mask_id, masks)
  feature = tf.math.l2_normalize(tf.constant(rng.randn(batch, pixels, channels), tf.float32), -1)
  indices = tf.constant(np.stack([rng.permutation(pixels)[:samples] for _ in range(batch)]))
  return one_hot, feature, indices


def _direct_pixel_contrastive(feature, one_hot, indices, temperature, top_k_percent=1.0):
  gt = tf.gather(one_hot, indices, batch_dims=1)
  same = tf.einsum("bkm,bjm->bkj", gt, gt)
  target = same / tf.maximum(tf.reduce_sum(same, -1, keepdims=True), 1.0)
  sampled = tf.gather(feature, indices, batch_dims=1)
  logits = tf.einsum("bkc,bjc->bkj", sampled, sampled) / temperature
  losses = tf.nn.softmax_cross_entropy_with_logits(target, logits)
  if top_k_percent != 1.0:
    losses = tf.math.top_k(losses, int(round(top_k_percent * losses.shape[1]))).values
  count = tf.reduce_sum(tf.cast(losses != 0, tf.float32), 1)
  return tf.math.divide_no_nan(tf.reduce_sum(losses, 1), count)


def _assert_matches_direct(seed, top_k_percent, loss_weight):
  one_hot, feature, indices = _case(seed=seed)
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(feature)
    ours = pixel_contrastive_instance_discrimination_loss(
        feature, one_hot, indices, 0.3, top_k_percent=top_k_percent, loss_weight=loss_weight)
    direct = loss_weight * _direct_pixel_contrastive(feature, one_hot, indices, 0.3,
                                                     top_k_percent)
    ours_total = tf.reduce_sum(ours * [1.0, 0.5])
    direct_total = tf.reduce_sum(direct * [1.0, 0.5])
  np.testing.assert_allclose(ours.numpy(), direct.numpy(), rtol=1e-5)
  ours_grad = tape.gradient(ours_total, feature).numpy()
  direct_grad = tape.gradient(direct_total, feature).numpy()
  np.testing.assert_allclose(ours_grad, direct_grad, rtol=0, atol=1e-5 * np.abs(direct_grad).max())


@pytest.mark.parametrize("rows_per_chunk", [1024, 16, 40])
def test_pixel_contrastive_value_and_gradient(rows_per_chunk, monkeypatch):
  # 40 samples: one chunk, three chunks with a padded last one, exactly one.
  monkeypatch.setattr(instance_discrimination_loss, "_ROWS_PER_CHUNK", rows_per_chunk)
  _assert_matches_direct(seed=0, top_k_percent=1.0, loss_weight=2.0)


def test_pixel_contrastive_top_k_value_and_gradient():
  # The hard-pixel path keeps the recomputing log-sum-exp gradient; same
  # reference and tolerances as above.
  _assert_matches_direct(seed=4, top_k_percent=0.5, loss_weight=1.0)


def test_pixel_contrastive_top_k():
  one_hot, feature, indices = _case(seed=1)
  full = pixel_contrastive_instance_discrimination_loss(feature, one_hot, indices, 0.3)
  hard = pixel_contrastive_instance_discrimination_loss(feature, one_hot, indices, 0.3,
                                                        top_k_percent=0.25)
  assert np.all(hard.numpy() > full.numpy())


def test_mask_average_matches_direct_formula():
  one_hot, feature, _ = _case(seed=2)
  thing = tf.constant(np.random.RandomState(3).randint(0, 2, (2, 60)), tf.float32)
  area = tf.reduce_sum(one_hot, 1)
  present = tf.cast(area > 0, tf.float32)
  ours = mask_average_instance_discrimination_loss(feature, one_hot, area, present, thing, 0.3)
  f, h, t = feature.numpy().astype(np.float64), one_hot.numpy(), thing.numpy()
  for b in range(2):
    centers = h[b].T @ f[b] / np.maximum(h[b].sum(0), 1)[:, None]
    centers /= np.maximum(np.linalg.norm(centers, axis=1, keepdims=True), 1e-6)
    logits = f[b] @ centers.T / 0.3
    logits[:, h[b].sum(0) == 0] = -99999.0
    logits -= logits.max(1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    losses = -(h[b] * log_probs).sum(1) * t[b]
    np.testing.assert_allclose(ours.numpy()[b], losses.sum() / (losses != 0).sum(), rtol=1e-5)
