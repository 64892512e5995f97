"""Activation lookup and the memory-lean GELU against TF's own GELU.

The forward value must equal tf.nn.gelu(approximate=False) bit for bit (the
same ops run); the recomputed gradient is compared with TF's autodiff of that
composite and with the closed form Phi(x) + x phi(x) in float64 (scipy's
ndtr), to 1e-6 absolute: float32 rounding of erfc/exp near |x| ~ 1.
"""
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
