"""Tests for AxialBlock (bottleneck with 2-D axial attention instead of 3x3 conv)."""
import numpy as np
import tensorflow as tf

from kmax_tf.layers import axial_block
from kmax_tf.testing import layer_checks


def test_channels_and_sublayers():
  block = axial_block.AxialBlock(16, strides=2, num_heads=4, name="block1")
  out = block(tf.zeros([2, 9, 9, 32]), training=False)
  assert out.shape == (2, 5, 5, 64)
  assert block.conv1_bn_act.filters == 32           # bottleneck_expansion * filters
  assert block.attention.height_axis.total_key_depth == 16
  assert block.attention.width_axis.total_value_depth == 32
  assert block.conv3_bn.filters == 64
  assert block.shortcut is not None and block.shortcut.strides == 2


def test_identity_shortcut_and_zero_gamma_start():
  block = axial_block.AxialBlock(8, num_heads=2, activation="gelu")
  x = tf.random.normal([1, 5, 5, 32])
  np.testing.assert_array_equal(block(x, training=False), tf.nn.gelu(x, approximate=False))
  assert block.shortcut is None
  assert not any("shortcut" in w.name for w in block.weights)


def test_matches_composition_of_sublayers():
  gelu = lambda t: tf.nn.gelu(t, approximate=False)
  block = axial_block.AxialBlock(8, strides=2, num_heads=2, activation="gelu")
  x = tf.random.normal([1, 7, 7, 16], seed=5)
  block(x)
  layer_checks.randomize_weights(block)
  a = gelu(x)
  y = block.conv1_bn_act(a, training=False)
  y = gelu(block.attention(y, training=False))
  expected = block.conv3_bn(y, training=False) + block.shortcut(a, training=False)
  np.testing.assert_allclose(block(x, training=False), expected, rtol=1e-5, atol=1e-5)


def test_get_config_round_trip():
  block = axial_block.AxialBlock(8, strides=1, activation="relu", drop_path_keep_prob=0.8,
                                 bottleneck_expansion=2, key_expansion=1.0,
                                 value_expansion=2.0, num_heads=2, query_shape=65)
  x = tf.random.normal([1, 5, 4, 12])
  block(x)
  layer_checks.randomize_weights(block)
  layer_checks.assert_config_round_trip(block, x)
