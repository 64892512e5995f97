"""Activation lookup by the names DeepLab2 configs use.

GELU is the exact (erf) form: kMaX-DeepLab (Yu et al., ECCV 2022) and DeepLab2
use `approximate=False`, and the tanh form would break checkpoint parity.
"""
import functools

import tensorflow as tf

_ACTIVATIONS = {
    "relu": tf.nn.relu,
    "gelu": functools.partial(tf.nn.gelu, approximate=False),
    "swish": tf.nn.silu,
    "sigmoid": tf.math.sigmoid,
    "identity": tf.identity,
}


def get_activation(name):
  """Returns the activation function for `name` (None or 'none' -> None)."""
  if name is None or name == "none":
    return None
  if name not in _ACTIVATIONS:
    raise ValueError(f"Unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}.")
  return _ACTIVATIONS[name]
