"""Tests of kmax_tf.training.adam_weight_decay (DeepLab2's AdamW for kMaX-DeepLab, ECCV 2022)."""
import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.training.adam_weight_decay import AdamWeightDecay


def _reference(value, grad, steps, lr, wd, decayed, b1=0.9, b2=0.999, eps=1e-7):
  value, m, v = np.float64(value), 0.0, 0.0
  for t in range(1, steps + 1):
    if decayed:
      value -= lr * wd * value
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad * grad
    value -= lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
  return value


@pytest.mark.parametrize("strategy", [None, "mirrored"])
def test_decays_only_selected_variables(strategy):
  scope = (tf.distribute.MirroredStrategy(["/cpu:0"]) if strategy
           else tf.distribute.get_strategy())
  with scope.scope():
    decayed = tf.Variable([2.0, -1.0])
    kept = tf.Variable([2.0, -1.0])
    optimizer = AdamWeightDecay(learning_rate=0.1, weight_decay=0.5, decayed_variables=[decayed])

  @tf.function
  def step():
    def replica():
      optimizer.apply_gradients([(tf.constant([0.3, -0.2]), decayed),
                                 (tf.constant([0.3, -0.2]), kept)])
    scope.run(replica)

  for _ in range(3):
    step()
  for i, (start, grad) in enumerate(((2.0, 0.3), (-1.0, -0.2))):
    np.testing.assert_allclose(decayed.numpy()[i], _reference(start, grad, 3, 0.1, 0.5, True),
                               rtol=1e-5)
    np.testing.assert_allclose(kept.numpy()[i], _reference(start, grad, 3, 0.1, 0.5, False),
                               rtol=1e-5)
  assert optimizer.decays(decayed) and not optimizer.decays(kept)


def test_zero_decay_is_plain_adam_and_config():
  variable = tf.Variable([1.0])
  optimizer = AdamWeightDecay(learning_rate=0.01, weight_decay=0.0, decayed_variables=[variable])
  assert not optimizer.decays(variable)
  config = optimizer.get_config()
  assert config["weight_decay"] == 0.0 and config["learning_rate"] == pytest.approx(0.01)
