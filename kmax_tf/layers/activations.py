"""Activation lookup by the names DeepLab2 configs use.

GELU is the exact (erf) form: kMaX-DeepLab and DeepLab2
use `approximate=False`, and the tanh form would break checkpoint parity.
"""
import math

import tensorflow as tf


# In a graph, tf.custom_gradient registers a new gradient function per call in
# TensorFlow's global gradient registry, which is never emptied; its closure
# holds the call's input, hence the whole graph and every variable it captured.
# Each kMaX model built (a symbolic call) stayed resident that way: 0.34 GB per
# R50 build, measured. Graphs therefore mark GELU's IdentityN with one gradient
# registered once here, which reads x from the op instead of a closure.
_GRAPH_GRADIENT = "KMaXTfGeluGradient"


def _gelu_derivative(x):
  # Written as erfc(x * -c), not TF's erfc(-x * c), so graph optimization
  # does not merge it with the forward term and keep that alive again.
  cdf = 0.5 * tf.math.erfc(x * tf.constant(-math.sqrt(0.5), x.dtype))
  pdf = tf.exp(tf.square(x) * tf.constant(-0.5, x.dtype)) * tf.constant(
      1.0 / math.sqrt(2.0 * math.pi), x.dtype)
  return cdf + x * pdf


def _gelu_graph_gradient(op, upstream, unused_upstream_of_x):
  # Inputs of the IdentityN: (GELU(x), x). Nothing flows into tf.nn.gelu's
  # intermediates, so they are not kept for the backward pass.
  return [None, upstream * _gelu_derivative(op.inputs[1])]


try:
  tf.RegisterGradient(_GRAPH_GRADIENT)(_gelu_graph_gradient)
except KeyError:  # this module imported again (importlib.reload): the first one stays
  pass


@tf.custom_gradient
def _eager_gelu(x):
  def grad(upstream):
    return upstream * _gelu_derivative(x)

  return tf.nn.gelu(x, approximate=False), grad


def gelu(x):
  """tf.nn.gelu(x, approximate=False), whose gradient keeps only x.

  TF differentiates the composite 0.5 * x * erfc(-x / sqrt(2)) through its
  intermediates, which keeps three activation-sized tensors alive per GELU
  until the backward pass (0.5 GB of the R50 training step's memory peak at
  257x257, batch 2). The derivative Phi(x) + x phi(x) is recomputed from x
  instead; the forward value is tf.nn.gelu's, bit for bit.

  Args:
    x: float tensor of any shape.

  Returns:
    GELU(x), same shape and dtype.
  """
  x = tf.convert_to_tensor(x)
  if tf.executing_eagerly():
    return _eager_gelu(x)
  # Keep tf.nn.gelu's exact op pattern: the TFLite converter turns it into its
  # builtin GELU, and TFLite has no builtin Erfc for any rewritten form.
  y = tf.nn.gelu(x, approximate=False)
  with tf.compat.v1.get_default_graph().gradient_override_map({"IdentityN": _GRAPH_GRADIENT}):
    y, _ = tf.identity_n([y, x])
  return y


_ACTIVATIONS = {
    "relu": tf.nn.relu,
    "gelu": gelu,
    "swish": tf.nn.silu,
    "sigmoid": tf.math.sigmoid,
    "identity": tf.identity,
}


def get_activation(name):
  """Returns the activation function for `name` (None or 'none' -> None).

  Args:
    name: 'relu', 'gelu' (exact erf form), 'swish', 'sigmoid', 'identity',
      'none' or None.
  """
  if name is None or name == "none":
    return None
  if name not in _ACTIVATIONS:
    raise ValueError(f"Unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}.")
  return _ACTIVATIONS[name]
