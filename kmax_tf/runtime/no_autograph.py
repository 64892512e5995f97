"""A decorator that traces a Keras layer's `call` without AutoGraph.

The model and the loss have no tensor-dependent Python control flow (their
loops run over Python ints, their data-dependent loops are tf.while_loop), so
AutoGraph has nothing to convert in them. Converting the ~370 call methods of
an R50 kMaX-DeepLab cost 3-4 s per model build and 1-1.5 s per trace, and the
loss's ~20 functions about 2 s per training-step trace (measured), all of it
on the way to a first training step, evaluation, prediction or export. Keras
converts a sub-layer's call only when the enclosing AutoGraph status is on, so
turning it off at the top layer covers everything below.
"""
import inspect

import tensorflow as tf


def without_autograph(call):
  """Returns `call` marked not to be converted, keeping its signature.

  `tf.autograph.experimental.do_not_convert` alone returns a `*args, **kwargs`
  wrapper, and Keras reads a layer's call signature (for `training`, `mask`
  and positional inputs) from the method, so the signature is carried over.

  Args:
    call: a function or method, e.g. a Keras layer's `call`.
  """
  wrapper = tf.autograph.experimental.do_not_convert(call)
  wrapper.__signature__ = inspect.signature(call)
  return wrapper
