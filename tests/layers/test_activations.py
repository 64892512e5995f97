"""Activation lookup and the memory-lean GELU against TF's own GELU.

The forward value must equal tf.nn.gelu(approximate=False) bit for bit (the
same ops run); the recomputed gradient is compared with TF's autodiff of that
composite and with the closed form Phi(x) + x phi(x) in float64 (scipy's
ndtr), to 1e-6 absolute: float32 rounding of erfc/exp near |x| ~ 1.
"""
import gc
import weakref

import numpy as np
import pytest
import scipy.special
import tensorflow as tf

from kmax_tf.layers import activations


def _inputs(dtype=tf.float32):
  x = np.concatenate([np.linspace(-12, 12, 2001), np.random.RandomState(0).randn(4000) * 3])
  return tf.constant(x, dtype)


def test_gelu_value_is_tf_gelu_bit_for_bit():
  x = _inputs()
  np.testing.assert_array_equal(activations.gelu(x).numpy(),
                                tf.nn.gelu(x, approximate=False).numpy())


def test_gelu_gradient_matches_autodiff_and_closed_form():
  x = _inputs()
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(x)
    ours = activations.gelu(x)
    reference = tf.nn.gelu(x, approximate=False)
  ours_grad = tape.gradient(ours, x).numpy()
  np.testing.assert_allclose(ours_grad, tape.gradient(reference, x).numpy(), rtol=0, atol=1e-6)
  x64 = x.numpy().astype(np.float64)
  exact = scipy.special.ndtr(x64) + x64 * np.exp(-0.5 * x64 ** 2) / np.sqrt(2 * np.pi)
  np.testing.assert_allclose(ours_grad, exact, rtol=0, atol=1e-6)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_graph_gradient_equals_the_eager_one(jit_compile):
  # Graphs (tf.function, Keras symbolic calls, XLA) take the registered
  # IdentityN gradient, eager code the custom_gradient; same formula.
  x = _inputs()

  def value_and_gradient(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = activations.gelu(x)
    return y, tape.gradient(y, x)

  eager_value, eager_grad = value_and_gradient(x)
  graph_value, graph_grad = tf.function(value_and_gradient, jit_compile=jit_compile)(x)
  # Graph optimization and XLA fuse and reorder the float32 arithmetic (measured
  # up to 1.2e-7 apart), hence the module's 1e-6.
  np.testing.assert_allclose(graph_value.numpy(), eager_value.numpy(), rtol=0, atol=1e-6)
  np.testing.assert_allclose(graph_grad.numpy(), eager_grad.numpy(), rtol=0, atol=1e-6)
  # tf.gradients reads the registry directly (no tape).
  graph = tf.Graph()
  with graph.as_default():
    placeholder = tf.compat.v1.placeholder(tf.float32, [None])
    symbolic_grad = tf.gradients(activations.gelu(placeholder), placeholder)[0]
    with tf.compat.v1.Session() as session:
      np.testing.assert_allclose(session.run(symbolic_grad, {placeholder: x.numpy()}),
                                 eager_grad.numpy(), rtol=0, atol=1e-6)


def test_a_graph_that_used_gelu_is_freed():
  # tf.custom_gradient in a graph registers a closure over its input forever,
  # which kept every built model's variables alive (0.34 GB per R50 build).
  graph = tf.Graph()
  with graph.as_default():
    activations.gelu(tf.compat.v1.placeholder(tf.float32, [None, 8]))
  freed = weakref.ref(graph)
  del graph
  gc.collect()
  assert freed() is None


def test_gelu_keeps_dtype():
  x = _inputs(tf.bfloat16)
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = activations.gelu(x)
  assert y.dtype == tf.bfloat16 and tape.gradient(y, x).dtype == tf.bfloat16


def test_lookup():
  assert activations.get_activation("none") is None
  assert activations.get_activation("gelu") is activations.gelu
  with pytest.raises(ValueError, match="Unknown activation 'gelu2'"):
    activations.get_activation("gelu2")


def test_gelu_converts_to_tflite_builtin_gelu():
  # The TFLite converter recognizes tf.nn.gelu's exact op pattern; any other
  # form of the erf GELU leaves an Erfc, which has no builtin kernel.
  fn = tf.function(lambda x: activations.gelu(x) * 2.0,
                   input_signature=[tf.TensorSpec([1, 4, 4, 8], tf.float32)])
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [fn.get_concrete_function()], fn)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
  interpreter = Interpreter(model_content=converter.convert())
  assert "GELU" in {op["op_name"] for op in interpreter._get_ops_details()}  # pylint: disable=protected-access
