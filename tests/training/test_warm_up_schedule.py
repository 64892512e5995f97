"""Tests of kmax_tf.training.warm_up_schedule (kMaX-DeepLab, Yu et al., ECCV 2022)."""
import numpy as np
import pytest
import tf_keras

from kmax_tf.training.warm_up_schedule import WarmUpSchedule


def _poly(step, base=1e-3, steps=100, end=0.0, power=0.9):
  return (base - end) * (1 - min(step, steps) / steps) ** power + end


def test_linear_warmup_then_decay_at_the_global_step():
  decay = tf_keras.optimizers.schedules.PolynomialDecay(1e-3, 100, 0.0, power=0.9)
  schedule = WarmUpSchedule(1e-3, decay, warmup_steps=10)
  for step in (0, 1, 5, 9):
    np.testing.assert_allclose(float(schedule(step)), 1e-3 * step / 10, rtol=1e-6)
  # DeepLab2 evaluates the decay at the step itself, not at step - warmup.
  for step in (10, 11, 50, 99, 100, 150):
    np.testing.assert_allclose(float(schedule(step)), _poly(step), rtol=1e-5, atol=1e-12)


def test_config_round_trip():
  decay = tf_keras.optimizers.schedules.CosineDecay(5e-4, 1000)
  schedule = WarmUpSchedule(5e-4, decay, warmup_steps=50)
  clone = WarmUpSchedule.from_config(schedule.get_config())
  for step in (0, 25, 50, 500, 1000):
    assert float(clone(step)) == pytest.approx(float(schedule(step)), rel=1e-7)
  restored = tf_keras.optimizers.schedules.deserialize(
      tf_keras.optimizers.schedules.serialize(schedule))
  assert float(restored(25)) == pytest.approx(float(schedule(25)))


def test_rejects_non_positive_warmup():
  with pytest.raises(ValueError, match="warmup_steps"):
    WarmUpSchedule(1e-3, tf_keras.optimizers.schedules.PolynomialDecay(1e-3, 10), 0)
