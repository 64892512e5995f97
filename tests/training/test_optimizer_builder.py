"""Tests of kmax_tf.training.optimizer_builder against DeepLab2's optimizer rules.

kMaX-DeepLab (Yu et al., ECCV 2022) trains with DeepLab2's AdamWeightDecay:
weight decay var -= lr * wd * var (before the Adam step) on variables whose
Keras name matches `.*(kernel|weight):0$`, and a second optimizer with a scaled
schedule for the backbone. The reference below restates that arithmetic in
numpy; the fixture test checks the checkpoint-key rule against DeepLab2's own
Keras names.
"""
import csv
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.config import loader
from kmax_tf.config.config_error import ConfigError
from kmax_tf.testing import deeplab2_fixtures
from kmax_tf.training import optimizer_builder

_DEEPLAB2_DECAY = re.compile(r".*(kernel|weight):0$")


def _solver(**fields):
  text = "trainer_options { solver_options { %s } }" % " ".join(
      f"{k}: {v!r}".replace("'", '"') for k, v in fields.items())
  return loader.parse_config(text).trainer_options.solver_options


@pytest.mark.parametrize("model_name", deeplab2_fixtures.MODEL_NAMES)
def test_decay_rule_equals_deeplab2_keras_name_rule(model_name):
  path = os.path.join(deeplab2_fixtures.parity_dir(), "variables",
                      f"kmax_{model_name}_ckpt_to_keras_names.tsv")
  with open(path, encoding="utf-8") as f:
    rows = [r for r in csv.reader(f, delimiter="\t") if r and r[0].endswith("VARIABLE_VALUE")]
  assert len(rows) > 1000
  decayed = 0
  for checkpoint_key, keras_name in ((r[0], r[1]) for r in rows):
    key = checkpoint_key[:-len(deeplab2_fixtures.VALUE_SUFFIX)]
    expected = bool(_DEEPLAB2_DECAY.search(keras_name))
    assert optimizer_builder.decays_weight(key) == expected, (checkpoint_key, keras_name)
    decayed += expected
  assert decayed > 150


def test_key_rules():
  assert optimizer_builder.decays_weight("encoder/_stem/_conv/kernel")
  assert optimizer_builder.decays_weight("pixel_decoder/x/_depthwise_conv/depthwise_kernel")
  assert not optimizer_builder.decays_weight("encoder/_stem/_batch_norm/gamma")
  assert not optimizer_builder.decays_weight("transformer_decoder/_cluster_centers")
  assert not optimizer_builder.decays_weight("transformer_class_head/_conv/bias")
  assert optimizer_builder.is_backbone("encoder/_stem/_conv/kernel")
  assert not optimizer_builder.is_backbone("pixel_decoder/_stem/_conv/kernel")


class _FakeModel:
  """What group_variables reads: trainable variables and their DeepLab2 keys."""

  def __init__(self):
    self.keys = {
        "encoder/_stem/_conv/kernel": tf.Variable(np.full([3], 1.0, np.float32)),
        "encoder/_stem/_batch_norm/gamma": tf.Variable(np.full([3], 1.0, np.float32)),
        "transformer_class_head/_conv/kernel": tf.Variable(np.full([3], 2.0, np.float32)),
        "transformer_decoder/_cluster_centers": tf.Variable(np.full([3], -1.0, np.float32)),
    }
    self.trainable_variables = list(self.keys.values())

  def deeplab2_variable_map(self):
    return dict(self.keys)


def test_group_variables():
  model = _FakeModel()
  groups = optimizer_builder.group_variables(model)
  names = {id(v): k for k, v in model.keys.items()}
  assert sorted(names[id(v)] for v in groups.backbone) == [
      "encoder/_stem/_batch_norm/gamma", "encoder/_stem/_conv/kernel"]
  assert sorted(names[id(v)] for v in groups.decayed) == [
      "encoder/_stem/_conv/kernel", "transformer_class_head/_conv/kernel"]


def _deeplab2_adamw(value, grads, lrs, wd, decayed, b1=0.9, b2=0.999, eps=1e-7):
  """DeepLab2 AdamWeightDecay (legacy Adam + decoupled decay) in float64."""
  value = np.array(value, np.float64)
  m = np.zeros_like(value)
  v = np.zeros_like(value)
  for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
    if decayed:
      value = value - lr * value * wd
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    value = value - lr_t * m / (np.sqrt(v) + eps)
  return value


def test_adamw_matches_deeplab2_with_backbone_multiplier_and_warmup():
  solver = _solver(optimizer="adamw", adamw_weight_decay=0.05, base_learning_rate=0.01,
                   training_number_of_steps=20, warmup_steps=2,
                   backbone_learning_rate_multiplier=0.1)
  model = _FakeModel()
  groups = optimizer_builder.group_variables(model)
  optimizers = optimizer_builder.build_optimizers(solver, groups)
  assert set(optimizers) == {"optimizer", "backbone_optimizer"}
  rng = np.random.default_rng(0)
  grads = {k: [rng.normal(size=3) for _ in range(4)] for k in model.keys}
  initial = {k: v.numpy().copy() for k, v in model.keys.items()}
  head = {id(v) for v in groups.head}
  for step in range(4):
    pairs = [(tf.constant(grads[k][step], tf.float32), v) for k, v in model.keys.items()]
    optimizers["optimizer"].apply_gradients([p for p in pairs if id(p[1]) in head])
    optimizers["backbone_optimizer"].apply_gradients([p for p in pairs if id(p[1]) not in head])

  def lrs(multiplier):
    base = 0.01 * multiplier
    return [base * s / 2 if s < 2 else base * (1 - s / 20) ** 0.9 for s in range(4)]

  for key, variable in model.keys.items():
    multiplier = 0.1 if optimizer_builder.is_backbone(key) else 1.0
    expected = _deeplab2_adamw(initial[key], grads[key], lrs(multiplier), 0.05,
                               optimizer_builder.decays_weight(key))
    np.testing.assert_allclose(variable.numpy(), expected, rtol=2e-5, atol=1e-7, err_msg=key)
  lr = optimizer_builder.current_learning_rate(optimizers["backbone_optimizer"], 4)
  np.testing.assert_allclose(float(lr), 0.001 * (1 - 4 / 20) ** 0.9, rtol=1e-5)


def test_single_optimizer_without_multiplier_and_l2_penalty():
  solver = _solver(optimizer="adam", base_learning_rate=0.001)
  model = _FakeModel()
  groups = optimizer_builder.group_variables(model)
  assert list(optimizer_builder.build_optimizers(solver, groups)) == ["optimizer"]
  penalty = optimizer_builder.l2_penalty(groups.decayed, 0.1)
  np.testing.assert_allclose(float(penalty), 0.05 * (3 * 1.0 + 3 * 4.0), rtol=1e-6)


@pytest.mark.parametrize("fields,message", [
    ({"optimizer": "lamb"}, "optimizer 'lamb' is not supported"),
    ({"learning_policy": "step"}, "learning_policy 'step' is not supported"),
])
def test_unsupported_settings_are_config_errors(fields, message):
  with pytest.raises(ConfigError, match=message):
    optimizer_builder.build_optimizer(_solver(**fields))
