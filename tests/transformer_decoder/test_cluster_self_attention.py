"""Tests of self-attention among cluster centers (kMaX-DeepLab, Yu et al., ECCV 2022)."""
import numpy as np
import pytest
import scipy.special
import tensorflow as tf

from kmax_tf.transformer_decoder.cluster_self_attention import ClusterSelfAttention

B, N, C = 2, 5, 12


def _layer():
  layer = ClusterSelfAttention(key_channels=8, value_channels=12, output_channels=10,
                               num_heads=4, activation="gelu", name="attention")
  layer(tf.zeros([B, N, C]))
  for v in layer.weights:
    v.assign(tf.random.stateless_uniform(v.shape, [4, len(v.name)], minval=0.5, maxval=1.5))
  return layer


def _bn(layer, t):
  return ((t - layer.moving_mean.numpy()) / np.sqrt(layer.moving_variance.numpy() + 1e-3)
          * layer.gamma.numpy() + layer.beta.numpy())


def test_matches_reference_equations():
  layer = _layer()
  x = tf.random.stateless_normal([B, N, C], [1, 2])
  qkv = _bn(layer.qkv.batch_norm, x.numpy().astype(np.float64) @ layer.qkv.conv.kernel.numpy()[0])
  heads = lambda t: t.reshape(B, N, 4, -1).transpose(0, 2, 1, 3)   # [B, heads, N, d]
  q, k, v = heads(qkv[..., :8]), heads(qkv[..., 8:16]), heads(qkv[..., 16:])
  # Per-head BN on the unscaled logits: moving stats have shape [heads].
  sim = np.einsum("bhld,bhmd->bhlm", q, k)
  sim = _bn(layer.similarity_batch_norm, sim.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
  retrieved = np.einsum("bhlm,bhmd->bhld", scipy.special.softmax(sim, axis=-1), v)
  retrieved = _bn(layer.retrieved_value_batch_norm, retrieved)   # stats [1, heads, 1, d]
  retrieved = 0.5 * retrieved * (1 + scipy.special.erf(retrieved / np.sqrt(2)))
  retrieved = retrieved.transpose(0, 2, 1, 3).reshape(B, N, 12)
  out = layer.output_projection
  expected = _bn(out.batch_norm, retrieved @ out.conv.kernel.numpy()[0])
  np.testing.assert_allclose(layer(x, training=False).numpy(), expected, rtol=1e-4, atol=1e-4)


def test_batch_norm_shapes_follow_deeplab2():
  layer = _layer()
  assert layer.similarity_batch_norm.gamma.shape == (4,)
  assert layer.retrieved_value_batch_norm.gamma.shape == (1, 4, 1, 3)


def test_get_config_round_trip():
  layer = _layer()
  clone = ClusterSelfAttention.from_config(layer.get_config())
  clone(tf.zeros([B, N, C]))
  assert [v.shape for v in clone.weights] == [v.shape for v in layer.weights]
  clone.set_weights(layer.get_weights())
  x = tf.random.stateless_normal([B, N, C], [5, 6])
  np.testing.assert_array_equal(layer(x).numpy(), clone(x).numpy())


def test_rejects_indivisible_heads():
  with pytest.raises(ValueError):
    ClusterSelfAttention(key_channels=10, num_heads=4)
