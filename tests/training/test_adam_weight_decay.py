"""Tests of kmax_tf.training.adam_weight_decay (DeepLab2's AdamW for kMaX-DeepLab, ECCV 2022)."""
import json
import subprocess
import sys

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


_TWO_REPLICAS = r"""
import json
import tensorflow as tf
import tf_keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from kmax_tf.training.adam_weight_decay import AdamWeightDecay
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
result = {}
for loss_scale in (False, True):
  with strategy.scope():
    decayed = tf.Variable([2.0, -1.0], name="conv/kernel")
    kept = tf.Variable([2.0, -1.0], name="conv/bias")
    optimizer = AdamWeightDecay(learning_rate=0.1, weight_decay=0.5, decayed_variables=[decayed])
    if loss_scale:
      optimizer = tf_keras.mixed_precision.LossScaleOptimizer(optimizer, dynamic=False,
                                                              initial_scale=1.0)

  @tf.function
  def step():
    strategy.run(lambda: optimizer.apply_gradients([(tf.constant([0.3, -0.2]), decayed),
                                                    (tf.constant([0.3, -0.2]), kept)]))

  for _ in range(3):
    step()
  result[str(loss_scale)] = [[c.numpy().tolist() for c in strategy.experimental_local_results(v)]
                             for v in (decayed, kept)]
print(json.dumps(result))
"""


def test_two_mirrored_replicas_decay_every_component():
  # Each replica's update gets its own component variable (named
  # ".../replica_1:0" on the second), which must decay like the first.
  out = subprocess.run([sys.executable, "-c", _TWO_REPLICAS], capture_output=True, text=True,
                       timeout=300, check=True).stdout
  result = json.loads(out.strip().splitlines()[-1])
  for decayed, kept in result.values():
    for i, (start, grad) in enumerate(((2.0, 0.3), (-1.0, -0.2))):
      for replica in range(2):
        np.testing.assert_allclose(decayed[replica][i],
                                   _reference(start, grad, 3, 0.1, 0.5, True), rtol=1e-5)
        np.testing.assert_allclose(kept[replica][i],
                                   _reference(start, grad, 3, 0.1, 0.5, False), rtol=1e-5)


def test_zero_decay_is_plain_adam_and_config():
  variable = tf.Variable([1.0])
  optimizer = AdamWeightDecay(learning_rate=0.01, weight_decay=0.0, decayed_variables=[variable])
  assert not optimizer.decays(variable)
  config = optimizer.get_config()
  assert config["weight_decay"] == 0.0 and config["learning_rate"] == pytest.approx(0.01)


def _ancestors(op):
  """Every op `op` waits for, through data and control edges."""
  seen, stack = set(), [op]
  while stack:
    current = stack.pop()
    for parent in [t.op for t in current.inputs] + list(current.control_inputs):
      if parent not in seen:
        seen.add(parent)
        stack.append(parent)
  return seen


def test_decay_waits_for_the_gradient_inside_a_training_step():
  # The decay reads only the variable, so without an explicit dependency the
  # executor runs it as soon as the forward pass has read the variable. The
  # forward's read still holds the buffer for the backward pass, so the
  # assignment then copies the variable, and both copies live through the whole
  # step (330 MB at COCO R50's peak, benchmarks/train_step.py).
  kernel = tf.Variable(tf.ones([3, 3, 4, 4]))
  optimizer = AdamWeightDecay(learning_rate=0.1, weight_decay=0.5, decayed_variables=[kernel])
  images = tf.ones([1, 8, 8, 4])

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(tf.nn.conv2d(images, kernel, 1, "SAME") ** 2)
    gradient = tape.gradient(loss, kernel)
    optimizer.apply_gradients([(gradient, kernel)])
    return gradient

  graph = step.get_concrete_function().graph
  filter_gradients = [op for op in graph.get_operations() if op.type == "Conv2DBackpropFilter"]
  decays = [op for op in graph.get_operations() if op.type == "AssignSubVariableOp"]
  assert len(filter_gradients) == 1 and len(decays) == 1, (filter_gradients, decays)
  assert filter_gradients[0] in _ancestors(decays[0]), (
      "the weight decay of `kernel` does not wait for its gradient")
  # Same update as before: decay, then the Adam step, on the pre-step value.
  value_before = kernel.numpy().copy()
  gradient = step().numpy()
  expected = np.vectorize(lambda v, g: _reference(v, g, 1, 0.1, 0.5, True))(value_before, gradient)
  np.testing.assert_allclose(kernel.numpy(), expected, rtol=1e-5)
