"""Tests for AxialAttention2D (height-axis then width-axis attention)."""
import numpy as np
import tensorflow as tf

from kmax_tf.layers import axial_attention_2d
from kmax_tf.testing import layer_checks


def test_shapes_and_depths():
  layer = axial_attention_2d.AxialAttention2D(filters=16, num_heads=4)
  out = layer(tf.zeros([2, 5, 7, 24]), training=False)
  assert out.shape == (2, 5, 7, 32)
  assert layer.height_axis.total_key_depth == 16 and layer.height_axis.total_value_depth == 32
  assert layer.height_axis.qkv_kernel.shape == (24, 64)
  assert layer.width_axis.qkv_kernel.shape == (32, 64)  # width axis reads the height output
  assert layer.compute_output_shape((2, 5, 7, 24)) == (2, 5, 7, 32)


def test_height_then_width_composition():
  layer = axial_attention_2d.AxialAttention2D(filters=8, num_heads=2)
  x = tf.random.normal([2, 5, 6, 8], seed=1)
  layer(x)
  layer_checks.randomize_weights(layer)
  out = layer(x, training=False)
  cols = tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [-1, 5, 8])
  h = tf.transpose(tf.reshape(layer.height_axis(cols, training=False), [2, 6, 5, 16]),
                   [0, 2, 1, 3])
  expected = tf.reshape(layer.width_axis(tf.reshape(h, [-1, 6, 16]), training=False),
                        [2, 5, 6, 16])
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_stride_subsamples_after_each_axis():
  # Width attention is row-wise, so striding rows before it equals striding after.
  full = axial_attention_2d.AxialAttention2D(filters=8, num_heads=2, strides=1)
  strided = axial_attention_2d.AxialAttention2D(filters=8, num_heads=2, strides=2)
  x = tf.random.normal([1, 9, 9, 8], seed=2)
  full(x)
  strided(x)
  layer_checks.randomize_weights(full)
  strided.set_weights(full.get_weights())
  out = strided(x, training=False)
  assert out.shape == (1, 5, 5, 16)
  np.testing.assert_allclose(out, full(x, training=False)[:, ::2, ::2], rtol=1e-5, atol=1e-5)


def test_get_config_round_trip():
  layer = axial_attention_2d.AxialAttention2D(filters=8, strides=2, key_expansion=1.0,
                                              value_expansion=2.0, num_heads=2,
                                              query_shape=65, name="attention")
  x = tf.random.normal([1, 6, 5, 4])
  layer(x)
  layer_checks.randomize_weights(layer)
  layer_checks.assert_config_round_trip(layer, x)
