"""Tests of ConvNeXtBlock (Liu et al., CVPR 2022) against an independent NumPy reference."""
import numpy as np
import pytest
import scipy.special
import tensorflow as tf
import tf_keras

from kmax_tf.layers.convnext_block import ConvNeXtBlock
from kmax_tf.testing import layer_checks


def _numpy_block(x, block):
  """x + scale * W2(gelu(W1(LN(dwconv7x7_same(x))))) in float64."""
  x = x.astype(np.float64)
  k = block.depthwise_conv.kernel.numpy().astype(np.float64)[:, :, 0, :]  # [7, 7, C]
  b = block.depthwise_conv.bias.numpy()
  _, h, w, _ = x.shape
  xp = np.pad(x, [[0, 0], [3, 3], [3, 3], [0, 0]])
  y = np.zeros_like(x)
  for i in range(7):
    for j in range(7):
      y += xp[:, i:i + h, j:j + w, :] * k[i, j]
  y += b
  mean = y.mean(-1, keepdims=True)
  var = y.var(-1, keepdims=True)
  y = (y - mean) / np.sqrt(var + 1e-6) * block.norm.gamma.numpy() + block.norm.beta.numpy()
  y = y @ block.pointwise_conv1.kernel.numpy() + block.pointwise_conv1.bias.numpy()
  y = 0.5 * y * (1.0 + scipy.special.erf(y / np.sqrt(2.0)))
  y = y @ block.pointwise_conv2.kernel.numpy() + block.pointwise_conv2.bias.numpy()
  if block.layer_scale is not None:
    y = y * block.layer_scale.numpy()
  return x + y


def _input(shape=(2, 9, 11, 8), seed=0):
  return np.random.RandomState(seed).normal(size=shape).astype(np.float32)


def test_matches_numpy_reference_and_variable_shapes():
  block = ConvNeXtBlock(8, name="block")
  x = _input()
  block(x)
  assert block.depthwise_conv.kernel.shape == (7, 7, 1, 8)  # DeepLab2's grouped-conv layout
  assert block.pointwise_conv1.kernel.shape == (8, 32)
  assert block.pointwise_conv2.kernel.shape == (32, 8)
  assert block.layer_scale.shape == (1, 1, 1, 8)
  np.testing.assert_allclose(block.layer_scale.numpy(), 1e-6)
  assert len(block.weights) == 9
  layer_checks.randomize_weights(block, 1)
  out = block(x, training=False).numpy()
  assert out.shape == x.shape
  np.testing.assert_allclose(out, _numpy_block(x, block), atol=2e-5, rtol=1e-5)


def test_without_layer_scale():
  block = ConvNeXtBlock(8, layer_scale_init_value=0.0)
  x = _input()
  block(x)
  assert block.layer_scale is None and len(block.weights) == 8
  layer_checks.randomize_weights(block, 2)
  np.testing.assert_allclose(block(x).numpy(), _numpy_block(x, block), atol=2e-5, rtol=1e-5)


def test_drop_path_keeps_or_drops_whole_branch():
  block = ConvNeXtBlock(8, drop_path_keep_prob=0.5)
  x = _input((16, 5, 5, 8))
  block(x)
  layer_checks.randomize_weights(block, 3)
  branch = _numpy_block(x, block) - x
  np.testing.assert_allclose(block(x, training=False).numpy(), x + branch, atol=2e-5)
  tf.random.set_seed(0)
  out = block(x, training=True).numpy().astype(np.float64)
  kept = [np.allclose(o, xi + 2.0 * b, atol=5e-5) for o, xi, b in zip(out, x, branch)]
  dropped = [np.allclose(o, xi, atol=1e-6) for o, xi in zip(out, x)]
  assert all(k or d for k, d in zip(kept, dropped))
  assert any(kept) and any(dropped)


def test_wrong_channels_raise():
  with pytest.raises(ValueError):
    ConvNeXtBlock(8)(_input((1, 5, 5, 4)))


def test_get_config_round_trip():
  block = ConvNeXtBlock(8, drop_path_keep_prob=0.8, layer_scale_init_value=0.5, name="b")
  x = _input()
  block(x)
  layer_checks.randomize_weights(block, 4)
  config = block.get_config()
  clone = ConvNeXtBlock.from_config(config)
  clone(x)
  assert clone.get_config() == config
  assert [v.shape for v in clone.weights] == [v.shape for v in block.weights]
  clone.set_weights(block.get_weights())
  np.testing.assert_array_equal(clone(x).numpy(), block(x).numpy())
  again = tf_keras.layers.deserialize(tf_keras.layers.serialize(block))
  assert isinstance(again, ConvNeXtBlock) and again.drop_path_keep_prob == 0.8
