"""Tests of k-means cross-attention (Yu et al., "k-means Mask Transformer", ECCV 2022)."""
import numpy as np
import tensorflow as tf

from kmax_tf.transformer_decoder.kmeans_cross_attention import KMeansCrossAttention
from kmax_tf.transformer_decoder.kmeans_cross_attention import hard_assignment

B, H, W, C, N = 2, 3, 4, 6, 5


def _inputs(seed=0):
  pixels = tf.random.stateless_normal([B, H * W, C], [seed, 1])
  logits = tf.random.stateless_normal([B, H, W, N], [seed, 2])
  return pixels, logits


def _layer():
  layer = KMeansCrossAttention(value_channels=8, output_channels=7, name="kmeans")
  layer(_inputs())
  for v in layer.weights:
    v.assign(tf.random.stateless_uniform(v.shape, [3, len(v.name)], minval=0.5, maxval=1.5))
  return layer


def _bn(layer, t, training):
  if training:
    axes = tuple(range(t.ndim - 1))
    mean, var = t.mean(axis=axes), t.var(axis=axes)
  else:
    mean, var = layer.moving_mean.numpy(), layer.moving_variance.numpy()
  return (t - mean) / np.sqrt(var + 1e-3) * layer.gamma.numpy() + layer.beta.numpy()


def _reference(layer, pixels, logits, training):
  """Hard assignment + sum of the assigned pixel values, in float64 numpy."""
  value = _bn(layer.pixel_value.batch_norm,
              pixels.numpy().astype(np.float64) @ layer.pixel_value.conv.kernel.numpy()[0],
              training)
  assignment = np.eye(N)[np.argmax(logits.numpy(), -1)].reshape(B, H * W, N)
  centers = _bn(layer.retrieved_value_batch_norm,
                np.einsum("bln,blc->bnc", assignment, value), training)
  out = layer.output_projection
  return _bn(out.batch_norm, centers @ out.conv.kernel.numpy()[0], training)


def test_hard_assignment_is_one_hot_argmax():
  logits = tf.constant([[[[0.1, 2.0, -1.0], [3.0, 2.9, 0.0]]]])
  np.testing.assert_array_equal(hard_assignment(logits).numpy(),
                                [[[0, 1, 0], [1, 0, 0]]])


def test_matches_reference_in_both_modes():
  layer = _layer()
  pixels, logits = _inputs(seed=5)
  for training in (False, True):
    np.testing.assert_allclose(layer((pixels, logits), training=training).numpy(),
                               _reference(layer, pixels, logits, training),
                               rtol=1e-4, atol=1e-4)


def test_no_gradient_through_assignment():
  layer = _layer()
  pixels, logits = _inputs(seed=6)
  with tf.GradientTape(persistent=True) as tape:
    tape.watch([pixels, logits])
    loss = tf.reduce_sum(layer((pixels, logits), training=True) ** 2)
  assert tape.gradient(loss, logits) is None
  assert float(tf.reduce_sum(tf.abs(tape.gradient(loss, pixels)))) > 0


def test_output_projection_starts_at_zero():
  layer = KMeansCrossAttention(value_channels=8, output_channels=7)
  out = layer(_inputs(), training=False)
  np.testing.assert_array_equal(out.numpy(), np.zeros([B, N, 7]))


def test_get_config_round_trip():
  layer = _layer()
  clone = KMeansCrossAttention.from_config(layer.get_config())
  clone(_inputs())
  assert [v.shape for v in clone.weights] == [v.shape for v in layer.weights]
  clone.set_weights(layer.get_weights())
  x = _inputs(seed=8)
  np.testing.assert_array_equal(layer(x).numpy(), clone(x).numpy())
