"""Activation lookup by the names DeepLab2 configs use.

GELU is the exact (erf) form: kMaX-DeepLab and DeepLab2
use `approximate=False`, and the tanh form would break checkpoint parity.
"""
import math

import tensorflow as tf


@tf.custom_gradient
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
  # Keep tf.nn.gelu's exact op pattern: the TFLite converter turns it into its
  # builtin GELU, and TFLite has no builtin Erfc for any rewritten form.
  y = tf.nn.gelu(x, approximate=False)

  def grad(upstream):
    # Written as erfc(x * -c), not TF's erfc(-x * c), so graph optimization
    # does not merge it with the forward term and keep that alive again.
    cdf = 0.5 * tf.math.erfc(x * tf.constant(-math.sqrt(0.5), x.dtype))
    pdf = tf.exp(tf.square(x) * tf.constant(-0.5, x.dtype)) * tf.constant(
        1.0 / math.sqrt(2.0 * math.pi), x.dtype)
    return upstream * (cdf + x * pdf)

  return y, grad


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
