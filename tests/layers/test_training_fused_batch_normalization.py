"""TrainingFusedBatchNormalization: fused kernel in training steps only.

References: tf_keras.layers.BatchNormalization with fused=False (the plain
formula, what DeepLab2's SyncBatchNormalization computes at inference) and
with fused=True, on the same weights.
"""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from kmax_tf.layers.training_fused_batch_normalization import TrainingFusedBatchNormalization

# Runs again in CI with the other oneDNN setting (.ci/run).
pytestmark = pytest.mark.kernels


def _layers_with_shared_weights():
  rng = np.random.RandomState(0)
  weights = [rng.uniform(0.5, 1.5, 8), rng.randn(8), rng.randn(8), rng.uniform(0.5, 2.0, 8)]
  layers = {"ours": TrainingFusedBatchNormalization(momentum=0.9, epsilon=1e-3),
            "plain": tf_keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3, fused=False),
            "fused": tf_keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3, fused=True)}
  for layer in layers.values():
    layer.build([2, 5, 5, 8])
    layer.set_weights([w.astype(np.float32) for w in weights])
  x = tf.constant(rng.randn(2, 5, 5, 8) * 3 + 1, tf.float32)
  return layers, x


def _op_types(layer, training):
  graph = tf.function(lambda x: layer(x, training=training)).get_concrete_function(
      tf.TensorSpec([2, 5, 5, 8])).graph
  return {op.type for op in graph.get_operations()}


def test_inference_is_the_plain_formula_bit_for_bit():
  layers, x = _layers_with_shared_weights()
  for call in (lambda l: l(x, training=False), lambda l: tf.function(l)(x, training=False)):
    np.testing.assert_array_equal(call(layers["ours"]).numpy(), call(layers["plain"]).numpy())
  assert not any(t.startswith("FusedBatchNorm") for t in _op_types(layers["ours"], False))
  assert layers["ours"].fused  # the layer is unchanged after an inference call


def test_training_runs_the_fused_kernel():
  layers, x = _layers_with_shared_weights()
  assert "FusedBatchNormV3" in _op_types(layers["ours"], True)
  ours = layers["ours"](x, training=True).numpy()
  fused = layers["fused"](x, training=True).numpy()
  np.testing.assert_array_equal(ours, fused)
  for a, b in zip(layers["ours"].get_weights(), layers["fused"].get_weights()):
    np.testing.assert_array_equal(a, b)  # moving statistics updated alike


def test_get_config_round_trip():
  layer = TrainingFusedBatchNormalization(momentum=0.99, epsilon=1e-3, name="bn")
  clone = TrainingFusedBatchNormalization.from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()
  restored = tf_keras.utils.deserialize_keras_object(tf_keras.utils.serialize_keras_object(layer))
  assert isinstance(restored, TrainingFusedBatchNormalization)
