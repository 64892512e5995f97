"""Tests for BottleneckBlock (ResNet bottleneck in DeepLab2's form)."""
import numpy as np
import tensorflow as tf

from kmax_tf.layers import bottleneck_block
from kmax_tf.testing import layer_checks


def _conv_bn(layer, x, act=None):
  kernel, gamma, beta, mean, var = [w.numpy() for w in layer.weights]
  if layer.strides != 1:
    pad = (layer.kernel_size - 1) // 2
    x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    y = tf.nn.conv2d(x, kernel, layer.strides, "VALID")
  else:
    y = tf.nn.conv2d(x, kernel, 1, "SAME", dilations=layer.dilation_rate)
  y = (y - mean) / np.sqrt(var + 1e-3) * gamma + beta
  return act(y) if act else y


def test_projection_shortcut_and_shapes():
  block = bottleneck_block.BottleneckBlock(8, strides=2, name="block1")
  out = block(tf.zeros([2, 9, 9, 16]), training=False)
  assert out.shape == (2, 5, 5, 32)
  assert block.shortcut is not None and block.shortcut.strides == 2
  assert block.conv2_bn_act.strides == 2 and block.conv1_bn_act.strides == 1
  assert len(block.weights) == 4 * 5


def test_identity_shortcut_owns_no_variables():
  block = bottleneck_block.BottleneckBlock(8)
  block(tf.zeros([1, 5, 5, 32]))
  assert block.shortcut is None
  assert len(block.weights) == 3 * 5
  assert not any("shortcut" in w.name for w in block.weights)


def test_zero_gamma_start_is_activated_identity():
  # conv3's BN gamma starts at 0, so a fresh block returns act(x) (+ 0).
  block = bottleneck_block.BottleneckBlock(8, activation="relu")
  x = tf.random.normal([2, 5, 5, 32])
  np.testing.assert_array_equal(block(x, training=False), tf.nn.relu(x))


def test_matches_manual_computation_with_stride_and_dilation():
  gelu = lambda t: tf.nn.gelu(t, approximate=False)
  for strides, dilation in ((2, 1), (1, 2)):
    block = bottleneck_block.BottleneckBlock(4, strides=strides, dilation_rate=dilation,
                                             activation="gelu")
    x = tf.random.normal([1, 7, 7, 8], seed=3)
    block(x)
    layer_checks.randomize_weights(block)
    a = gelu(x)
    y = _conv_bn(block.conv1_bn_act, a, gelu)
    y = _conv_bn(block.conv2_bn_act, y, gelu)
    y = _conv_bn(block.conv3_bn, y)
    expected = y + _conv_bn(block.shortcut, a)
    np.testing.assert_allclose(block(x, training=False), expected, rtol=1e-4, atol=1e-4)


def test_strided_identity_shortcut_subsamples():
  block = bottleneck_block.BottleneckBlock(4, strides=2, activation="relu")
  x = tf.random.normal([1, 7, 7, 16])
  np.testing.assert_array_equal(block(x, training=False), tf.nn.relu(x)[:, ::2, ::2])
  assert block.shortcut is None


def test_drop_path_drops_whole_residual_branch():
  block = bottleneck_block.BottleneckBlock(4, drop_path_keep_prob=0.5, activation="relu")
  x = tf.random.normal([64, 3, 3, 16], seed=4)
  block(x)
  layer_checks.randomize_weights(block)
  out = block(x, training=True)
  # Per example, the branch is dropped entirely (output == act(x)) or kept.
  dropped = np.all(np.isclose(out, tf.nn.relu(x)), axis=(1, 2, 3))
  assert 10 < dropped.sum() < 54


def test_get_config_round_trip():
  block = bottleneck_block.BottleneckBlock(4, strides=2, dilation_rate=1, activation="gelu",
                                           drop_path_keep_prob=0.9, name="block2")
  x = tf.random.normal([1, 6, 6, 8])
  block(x)
  layer_checks.randomize_weights(block)
  layer_checks.assert_config_round_trip(block, x)
