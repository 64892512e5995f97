"""Tests of kmax_tf.training.gradient_recomputation (memory saving for kMaX-DeepLab training)."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from kmax_tf.layers.drop_path import DropPath
from kmax_tf.training import gradient_recomputation


class _Block(tf_keras.layers.Layer):
  """Conv + BN + GELU returning a dict, like a pixel encoder's endpoints."""

  def __init__(self, keep_prob=1.0, **kwargs):
    super().__init__(**kwargs)
    self.conv = tf_keras.layers.Conv2D(4, 3, padding="same", name="conv")
    self.norm = tf_keras.layers.BatchNormalization(momentum=0.9, name="norm")
    self.drop = DropPath(keep_prob, name="drop")

  def call(self, inputs, training=None):
    x = tf.nn.gelu(self.norm(self.conv(inputs["x"]), training=training))
    x = self.drop(x, training=training)
    return {"res2": x, "res3": tf.nn.avg_pool2d(x, 2, 2, "VALID"), "x": inputs["x"]}


def _train_once(recompute):
  tf_keras.utils.set_random_seed(1)
  block = _Block()
  inputs = {"x": tf.random.stateless_normal([2, 8, 8, 3], seed=[1, 2])}
  block(inputs, training=False)
  if recompute:
    gradient_recomputation.enable(block)

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      out = block(inputs, training=True)
      loss = tf.reduce_sum(out["res2"] ** 2) + tf.reduce_sum(out["res3"])
    return tape.gradient(loss, block.trainable_variables)

  grads = step()
  return [g.numpy() for g in grads], [v.numpy() for v in block.norm.non_trainable_variables]


def test_same_gradients_and_single_statistics_update():
  plain_grads, plain_stats = _train_once(False)
  grads, stats = _train_once(True)
  for a, b in zip(plain_grads, grads):
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
  for a, b in zip(plain_stats, stats):
    np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
  assert not np.allclose(stats[0], 0.0)  # the moving mean did move, once


def test_refuses_active_drop_path():
  block = _Block(keep_prob=0.8)
  assert gradient_recomputation.stochastic_sublayers(block) == ["drop"]
  with pytest.raises(ValueError, match="drop path is active"):
    gradient_recomputation.enable(block)
