"""DilatedConv2D against Keras Conv2D (tf.nn.convolution's space_to_batch path).

Same kernel, same inputs: outputs and gradients agree to float32 summation
order (atol 1e-5 of the largest entry; measured ~2e-6), for rates that fit in
the map and rates larger than it (where only the centre tap touches it), on
both of the layer's paths (native Conv2D and shifted matrix product).
"""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from kmax_tf import kernel_choices
from kmax_tf.layers import dilated_conv2d
from kmax_tf.layers.dilated_conv2d import DilatedConv2D

# Runs again in CI with the other oneDNN setting (.ci/run).
pytestmark = pytest.mark.kernels


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


def _graph_ops(layer, shape):
  graph = tf.function(layer).get_concrete_function(tf.TensorSpec(shape)).graph
  return graph.get_operations()


def test_path_follows_the_kernel_choice():
  ops = _graph_ops(DilatedConv2D(4, 3, padding="same", dilation_rate=6), [1, 9, 9, 3])
  op_types = {op.type for op in ops}
  assert "SpaceToBatchND" not in op_types, op_types
  dilations = [list(op.get_attr("dilations")) for op in ops if op.type == "Conv2D"]
  if kernel_choices.kernel_choices().native_dilated_conv:
    assert dilations == [[1, 6, 6, 1]], dilations
  else:
    assert dilations == [[1, 1, 1, 1]] and "ConcatV2" in op_types, (dilations, op_types)


@pytest.mark.parametrize("rate,size,expected", [(18, 9, 1), (9, 9, 1), (8, 9, 3), (6, 9, 3),
                                                (12, 21, 3), (2, None, 3)])
def test_live_taps(rate, size, expected):
  assert dilated_conv2d.live_taps(3, rate, size) == expected
  assert dilated_conv2d.live_taps(5, 4, 9) == 5 and dilated_conv2d.live_taps(5, 5, 9) == 3


def test_taps_that_only_read_padding_are_dropped():
  # Rate 12 on a 9x20 map: rows reduce to the centre tap, columns keep 3 taps.
  ops = _graph_ops(DilatedConv2D(4, 3, padding="same", dilation_rate=12), [1, 9, 20, 3])
  convs = [op for op in ops if op.type == "Conv2D"]
  assert len(convs) == 1
  if kernel_choices.kernel_choices().native_dilated_conv:
    assert list(convs[0].get_attr("dilations")) == [1, 1, 12, 1]
    assert convs[0].inputs[1].shape.as_list() == [1, 3, 3, 4]
  else:
    assert convs[0].inputs[1].shape.as_list() == [1, 1, 9, 4]
  ops = _graph_ops(DilatedConv2D(4, 3, padding="same", dilation_rate=18), [1, 9, 9, 3])
  convs = [op for op in ops if op.type == "Conv2D"]
  assert [list(c.get_attr("dilations")) for c in convs] == [[1, 1, 1, 1]]
  assert convs[0].inputs[1].shape.as_list() == [1, 1, 3, 4]


@pytest.mark.parametrize("rate,shape", [((2, 3), [2, 7, 11, 5]), ((6, 6), [1, 9, 9, 4])])
def test_shifted_matmul_matches_keras_value_and_gradient(rate, shape):
  # The path used where the native op has no gradient, checked on every machine;
  # also with the map's size unknown when the graph is built.
  rng = np.random.RandomState(0)
  x = tf.constant(rng.randn(*shape), tf.float32)
  kernel = tf.constant(rng.randn(3, 3, shape[-1], 6), tf.float32)

  def values(fn):
    with tf.GradientTape() as tape:
      tape.watch([x, kernel])
      y = fn(x, kernel)
      loss = tf.reduce_sum(y * y)
    return [y] + tape.gradient(loss, [x, kernel])

  dynamic = tf.function(lambda a, k: dilated_conv2d.shifted_matmul_conv2d(a, k, rate),
                        input_signature=[tf.TensorSpec([None, None, None, shape[-1]]),
                                         tf.TensorSpec([3, 3, shape[-1], 6])])
  reference = values(lambda a, k: tf.nn.convolution(a, k, padding="SAME", dilations=rate))
  for fn in (lambda a, k: dilated_conv2d.shifted_matmul_conv2d(a, k, rate), dynamic):
    for a, b in zip(values(fn), reference):
      np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-5 * np.abs(b.numpy()).max())


def test_choice_matches_what_the_native_op_can_differentiate():
  # A real shape of the pixel decoder (stride-32 stage at a 257 crop, rate 2):
  # the native op's input and filter gradients must work where it is chosen.
  # Where it is not chosen (TensorFlow's own CPU kernels), they must really be
  # missing, else the choice costs speed for nothing. A 1-channel 3x3 probe
  # does not fail there, so the shape matters.
  x = tf.random.stateless_normal([1, 9, 9, 64], seed=[1, 2])
  kernel = tf.random.stateless_normal([3, 3, 64, 64], seed=[3, 4])

  def gradients():
    with tf.GradientTape() as tape:
      tape.watch([x, kernel])
      y = tf.nn.conv2d(x, kernel, 1, "SAME", dilations=2)
      loss = tf.reduce_sum(y * y)
    return [g.numpy() for g in tape.gradient(loss, [x, kernel])]

  if kernel_choices.kernel_choices().native_dilated_conv:
    grad_x, grad_kernel = gradients()
    assert np.isfinite(grad_x).all() and np.abs(grad_kernel).max() > 0
  else:
    with pytest.raises((tf.errors.InvalidArgumentError, tf.errors.UnimplementedError),
                       match="dilation"):
      gradients()


def test_get_config_round_trip_and_checks():
  layer = DilatedConv2D(4, 3, padding="same", dilation_rate=6, name="conv")
  clone = DilatedConv2D.from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()
  with pytest.raises(ValueError, match="stride 1"):
    DilatedConv2D(4, 3, strides=2, dilation_rate=1)
