"""Tests for AxialBlock (bottleneck with 2-D axial attention instead of 3x3 conv)."""
import numpy as np
import tensorflow as tf
import tf_keras

from kmax_tf.layers import axial_block


def _randomize(layer, seed=0):
  rng = np.random.RandomState(seed)
  for v in layer.weights:
    if "moving_variance" in v.name or "gamma" in v.name:
      value = rng.uniform(0.5, 1.5, v.shape)
    else:
      value = 0.2 * rng.randn(*v.shape)
    v.assign(value.astype(np.float32))


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
  _randomize(block)
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
  _randomize(block)
  clone = tf_keras.layers.deserialize(tf_keras.layers.serialize(block))
  assert clone.get_config() == block.get_config()
  clone(x)
  clone.set_weights(block.get_weights())
  assert [w.shape for w in clone.weights] == [w.shape for w in block.weights]
  np.testing.assert_array_equal(clone(x, training=False), block(x, training=False))
