"""DilatedConv2D against Keras Conv2D (tf.nn.convolution's space_to_batch path).

Same kernel, same inputs: outputs and gradients agree to float32 summation
order (rtol 1e-5 of the largest entry; measured ~2e-6), for rates that fit in
the map and rates larger than it (where only the centre tap touches it).
"""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from kmax_tf.layers import dilated_conv2d
from kmax_tf.layers.dilated_conv2d import DilatedConv2D


@pytest.mark.parametrize("rate,size", [(2, 7), (6, 9), (18, 9), (3, 10)])
def test_matches_keras_conv2d_value_and_gradient(rate, size):
  rng = np.random.RandomState(rate)
  x = tf.constant(rng.randn(2, size, size, 16), tf.float32)
  ours = DilatedConv2D(8, 3, padding="same", dilation_rate=rate, use_bias=True)
  reference = tf_keras.layers.Conv2D(8, 3, padding="same", dilation_rate=rate, use_bias=True)
  ours.build(x.shape)
  reference.build(x.shape)
  reference.set_weights([rng.randn(3, 3, 16, 8).astype(np.float32),
                         rng.randn(8).astype(np.float32)])
  ours.set_weights(reference.get_weights())
  results = []
  for layer in (ours, reference):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = layer(x)
      loss = tf.reduce_sum(y * y)
    results.append([y] + tape.gradient(loss, [x, layer.kernel, layer.bias]))
  for a, b in zip(*results):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-5 * np.abs(b.numpy()).max())


def test_uses_one_native_conv_op():
  assert dilated_conv2d.native_dilation_supported(), (
      "this TensorFlow (oneDNN CPU kernels expected) lacks a dilated Conv2D gradient")
  layer = DilatedConv2D(4, 3, padding="same", dilation_rate=6)
  graph = tf.function(layer).get_concrete_function(tf.TensorSpec([1, 9, 9, 3])).graph
  op_types = {op.type for op in graph.get_operations()}
  assert "Conv2D" in op_types and "SpaceToBatchND" not in op_types, op_types


def test_get_config_round_trip_and_checks():
  layer = DilatedConv2D(4, 3, padding="same", dilation_rate=6, name="conv")
  clone = DilatedConv2D.from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()
  with pytest.raises(ValueError, match="stride 1"):
    DilatedConv2D(4, 3, strides=2, dilation_rate=1)
