"""Tests for AxialAttention (Axial-DeepLab position-sensitive 1-D attention)."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from kmax_tf.layers import axial_attention
from kmax_tf.testing import layer_checks

EPS = 1e-3


def _bn(layer, x):
  g, b, m, v = (layer.gamma.numpy(), layer.beta.numpy(),
                layer.moving_mean.numpy(), layer.moving_variance.numpy())
  return (x - m) / np.sqrt(v + EPS) * g + b


def _numpy_reference(layer, x):
  """The Axial-DeepLab formula written out per head with explicit loops."""
  n, length, _ = x.shape
  heads, dk = layer.num_heads, layer.total_key_depth // layer.num_heads
  dv = layer.total_value_depth // layer.num_heads
  qkv = _bn(layer.batch_norm_qkv, x @ layer.qkv_kernel.numpy())
  q, k, v = np.split(qkv, [layer.total_key_depth, 2 * layer.total_key_depth], axis=-1)
  q = q.reshape(n, length, heads, dk).transpose(0, 2, 1, 3)
  k = k.reshape(n, length, heads, dk).transpose(0, 2, 1, 3)
  v = v.reshape(n, length, heads, dv).transpose(0, 2, 1, 3)
  offset = axial_attention.MAX_SPAN - 1
  rel = lambda table: np.stack([[table[j - i + offset] for j in range(length)]
                                for i in range(length)])
  rq, rk, rv = (rel(layer.query_rpe_embeddings.numpy()), rel(layer.key_rpe_embeddings.numpy()),
                rel(layer.value_rpe_embeddings.numpy()))
  sim = np.stack([np.einsum("bhld,bhmd->bhlm", q, k),
                  np.einsum("bhld,lmd->bhlm", q, rq),
                  np.einsum("bhmd,lmd->bhlm", k, rk)])
  sim = _bn(layer.batch_norm_similarity, sim).sum(0)
  w = np.exp(sim - sim.max(-1, keepdims=True))
  w /= w.sum(-1, keepdims=True)
  out = np.stack([np.einsum("bhlm,bhmd->bhld", w, v), np.einsum("bhlm,lmd->bhld", w, rv)])
  out = _bn(layer.batch_norm_retrieved_output, out).sum(0)
  return out.transpose(0, 2, 1, 3).reshape(n, length, heads * dv)


def test_shapes_and_variables():
  layer = axial_attention.AxialAttention(16, 32, num_heads=4, name="height_axis")
  out = layer(tf.zeros([3, 7, 12]), training=False)
  assert out.shape == (3, 7, 32)
  assert layer.qkv_kernel.shape == (12, 64)
  assert layer.query_rpe_embeddings.shape == (509, 4)
  assert layer.value_rpe_embeddings.shape == (509, 8)
  # Stacked-term batch norms: one parameter per term and head (and value channel).
  assert layer.batch_norm_similarity.gamma.shape == (3, 1, 4, 1, 1)
  assert layer.batch_norm_retrieved_output.gamma.shape == (2, 1, 4, 1, 8)
  assert len(layer.trainable_weights) == 10 and len(layer.weights) == 16


def test_matches_numpy_formula():
  layer = axial_attention.AxialAttention(16, 32, num_heads=4)
  x = np.random.RandomState(1).randn(2, 9, 12).astype(np.float32)
  layer(x)
  layer_checks.randomize_weights(layer)
  out = layer(x, training=False).numpy()
  np.testing.assert_allclose(out, _numpy_reference(layer, x.astype(np.float64)),
                             rtol=1e-4, atol=1e-4)


def test_relative_distance_index():
  index = axial_attention.relative_distance_index(4)
  assert index[0, 0] == 254 and index[0, 3] == 257 and index[3, 0] == 251
  assert (np.diag(index) == 254).all()


def test_rejects_axis_longer_than_query_shape():
  layer = axial_attention.AxialAttention(8, 16, num_heads=2, query_shape=5)
  with pytest.raises(NotImplementedError):
    layer(tf.zeros([1, 6, 4]))


def test_training_mode_runs():
  layer = axial_attention.AxialAttention(8, 16, num_heads=2)
  out = layer(tf.random.normal([4, 5, 6]), training=True)
  assert out.shape == (4, 5, 16)
  assert np.isfinite(out.numpy()).all()


def test_get_config_round_trip():
  layer = axial_attention.AxialAttention(16, 32, num_heads=4, query_shape=33,
                                         qk_rpe_init_std=0.5, name="width_axis")
  x = tf.random.normal([2, 6, 12])
  layer(x)
  layer_checks.randomize_weights(layer)
  config = layer.get_config()
  clone = tf_keras.layers.deserialize(tf_keras.layers.serialize(layer))
  assert clone.get_config() == config
  clone(x)
  clone.set_weights(layer.get_weights())
  assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]
  np.testing.assert_array_equal(clone(x, training=False), layer(x, training=False))
