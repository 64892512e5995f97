"""Checks every layer test runs: random weights, and the get_config round trip."""
import numpy as np
import tf_keras

# Weights that must stay positive for a layer to behave (BN variance, scales).
POSITIVE_WEIGHTS = ("moving_variance", "gamma")


def randomize_weights(layer, seed: int = 0, scale: float = 0.3) -> None:
  """Gives every weight of a built layer random values (positive where they must be).

  Positive weights (POSITIVE_WEIGHTS) are uniform in [0.5, 1.5]; the others
  normal with standard deviation `scale`. Fresh layers have zero biases, unit
  BN statistics and the like, under which many mistakes cancel out.
  """
  rng = np.random.RandomState(seed)
  for v in layer.weights:
    if any(name in v.name for name in POSITIVE_WEIGHTS):
      value = rng.uniform(0.5, 1.5, v.shape)
    else:
      value = rng.normal(0.0, scale, v.shape)
    v.assign(value.astype(np.float32))


def assert_config_round_trip(layer, inputs, **call_kwargs) -> None:
  """A built layer serialized and deserialized has its config, weights and outputs."""
  clone = tf_keras.layers.deserialize(tf_keras.layers.serialize(layer))
  assert clone.get_config() == layer.get_config()
  clone(inputs, **call_kwargs)
  clone.set_weights(layer.get_weights())
  assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]
  np.testing.assert_array_equal(clone(inputs, training=False, **call_kwargs),
                                layer(inputs, training=False, **call_kwargs))
