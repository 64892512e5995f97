"""Tests of kmax_tf.runtime.no_autograph."""
import inspect

import pytest
import tensorflow as tf
import tf_keras

from kmax_tf.runtime.no_autograph import without_autograph


class _NeedsAutoGraph(tf_keras.layers.Layer):
  """A layer whose call only traces when AutoGraph converts its `if`."""

  def call(self, x):
    if tf.reduce_sum(x) > 0:
      return x
    return -x


class _Outer(tf_keras.layers.Layer):

  def __init__(self, inner=None, **kwargs):
    super().__init__(**kwargs)
    self.inner = inner if inner is not None else _NeedsAutoGraph()
    self.seen_training = []

  @without_autograph
  def call(self, x, training=False, output_keys=None):
    self.seen_training.append(training)
    return self.inner(x)


class _PlainOuter(_Outer):

  def call(self, x, training=False, output_keys=None):
    self.seen_training.append(training)
    return self.inner(x)


def test_keras_still_reads_the_call_signature():
  layer = _Outer(inner=tf_keras.layers.Identity())
  assert list(inspect.signature(layer.call).parameters) == ["x", "training", "output_keys"]
  layer(tf.ones([2]), training=True)
  assert layer.seen_training == [True]
  # Keras passes `training` only to a call that declares it; a hidden signature
  # would drop it.
  tf.function(lambda x: layer(x, training=True))(tf.ones([2]))
  assert layer.seen_training[-1] is True


def test_sub_layers_are_not_converted_under_the_decorated_call():
  # The control case converts the inner `if` and traces; the decorated one
  # must not convert it, so tracing the tensor-dependent `if` fails.
  plain = _PlainOuter()
  assert float(tf.function(plain)(tf.ones([2]))[0]) == 1.0
  with pytest.raises(tf.errors.OperatorNotAllowedInGraphError):
    tf.function(_Outer())(tf.ones([2]))
