"""MOATAttention (Yang et al., ICLR 2023) against an independent NumPy reference."""
import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.layers.moat_attention import MOATAttention
from kmax_tf.layers.moat_attention import relative_position_indices
from kmax_tf.testing import layer_checks


def _numpy_attention(x, layer, bias):
  b, h, w, c = x.shape
  x = x.reshape(b, h * w, c).astype(np.float64)
  proj = lambda n: (np.einsum("bsc,cnk->bsnk", x, getattr(layer, f"{n}_kernel").numpy())
                    + getattr(layer, f"{n}_bias").numpy())
  q = proj("query") / np.sqrt(layer.head_size)
  logits = np.einsum("bsnk,btnk->bnst", q, proj("key")) + bias
  p = np.exp(logits - logits.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  out = np.einsum("bnst,btnk->bsnk", p, proj("value"))
  out = np.einsum("bsnk,nkc->bsc", out, layer.output_kernel.numpy()) + layer.output_bias.numpy()
  return out.reshape(b, h, w, -1)


def test_relative_position_indices_brute_force():
  h, w = 3, 4
  idx = relative_position_indices(h, w)
  for i in range(h):
    for j in range(w):
      for x in range(h):
        for y in range(w):
          assert idx[i * w + j, x * w + y] == (x - i + h - 1) * (2 * w - 1) + (y - j + w - 1)


def test_without_position_embedding_matches_numpy():
  layer = MOATAttention(16, head_size=8)
  x = tf.random.stateless_normal([2, 3, 5, 12], seed=[1, 2])
  layer(x)
  layer_checks.randomize_weights(layer, 0)
  assert layer.relative_position_embedding is None
  np.testing.assert_allclose(layer(x).numpy(), _numpy_attention(x.numpy(), layer, 0.0),
                             rtol=1e-4, atol=1e-4)


def test_position_bias_is_resized_table_reindexed():
  """Bias = bilinear resize of the [heads, 2P-1, 2P-1] table, then B[(i,j),(x,y)]."""
  layer = MOATAttention(16, head_size=8, position_embedding_size=2)
  x = tf.random.stateless_normal([1, 4, 4, 16], seed=[3, 4])
  layer(x)
  layer_checks.randomize_weights(layer, 1)
  table = layer.relative_position_embedding.numpy()
  assert table.shape == (2, 3, 3)
  resized = tf.image.resize(table[..., None], [7, 7]).numpy()[..., 0]
  bias = np.zeros([2, 16, 16])
  for i in range(4):
    for j in range(4):
      for u in range(4):
        for v in range(4):
          bias[:, i * 4 + j, u * 4 + v] = resized[:, u - i + 3, v - j + 3]
  np.testing.assert_allclose(layer(x).numpy(), _numpy_attention(x.numpy(), layer, bias),
                             rtol=1e-4, atol=1e-4)


def test_needs_static_size_and_divisible_heads():
  with pytest.raises(ValueError, match="multiple of head_size"):
    MOATAttention(20, head_size=8)


def test_get_config_round_trip():
  layer = MOATAttention(16, head_size=8, position_embedding_size=3, name="att")
  config = layer.get_config()
  assert MOATAttention.from_config(config).get_config() == config
