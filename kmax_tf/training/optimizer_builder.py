"""Optimizers and learning-rate schedules of the kMaX-DeepLab trainer.

kMaX-DeepLab trains with
AdamW (Loshchilov & Hutter, ICLR 2019), a linear warm-up then polynomial decay,
and a smaller learning rate (x0.1) for the ImageNet-pretrained backbone. The
rules are DeepLab2's, so its configs train the same way:

  - decoupled weight decay `var -= lr * adamw_weight_decay * var` before each
    Adam step, on convolution / dense kernels only. DeepLab2 selects them by
    Keras variable name (`.*(kernel|weight):0$`); the last component of a
    variable's DeepLab2 checkpoint key is that same name (checked against the
    four DeepLab2 fixture models), so we decide from
    `model.deeplab2_variable_map()`, independent of our own variable names;
  - the backbone is every variable under the checkpoint root `encoder/`; when
    `backbone_learning_rate_multiplier` is set it gets its own optimizer whose
    schedule (warm-up included) and weight decay are scaled by the multiplier,
    as DeepLab2's second optimizer does;
  - `weight_decay` (> 0) is an L2 penalty (weight_decay / 2) * sum(w^2) on the
    same kernels, the Keras l2(weight_decay / 2) regularizer DeepLab2 attaches
    to its convolutions;
  - the warm-up is `base_lr * step / warmup_steps`, then the decay schedule
    evaluated at the global step itself (not at step - warmup_steps), which is
    DeepLab2's `trainer_utils.WarmUp` and tf-models-official's
    `official.nlp.optimization.WarmUp` (power 1), used here: bitwise equal to
    DeepLab2's formula at every warm-up step of the COCO config, eager and in a
    graph. `official.modeling.optimization.lr_schedule.LinearWarmup` and
    `PolynomialWarmUp` instead ramp up to `decay(warmup_steps)`, 3.0% below the
    base rate with DeepLab2's kMaX config (poly 0.9, 150k steps, warm-up 5000),
    so every warm-up step is up to 3.0% lower (PolynomialWarmUp also starts at
    step 1's rate); tests/test_model_garden_equivalents.py checks both.
"""
import dataclasses
from typing import Dict, List, Optional

import tensorflow as tf
import tf_keras

from official.nlp import optimization as model_garden_optimization

from kmax_tf.config.config_error import ConfigError
from kmax_tf.training.adam_weight_decay import AdamWeightDecay

BACKBONE_ROOT = "encoder/"
_DECAYED_SUFFIXES = ("kernel", "weight")
# DeepLab2's Adam constants (tf.keras defaults).
ADAM_BETA_1 = 0.9
ADAM_BETA_2 = 0.999
ADAM_EPSILON = 1e-7
SGD_MOMENTUM = 0.9


def decays_weight(deeplab2_key: str) -> bool:
  """Whether DeepLab2 applies weight decay to the variable with this checkpoint key."""
  return deeplab2_key.rstrip("/").split("/")[-1].endswith(_DECAYED_SUFFIXES)


def is_backbone(deeplab2_key: str) -> bool:
  """Whether the variable belongs to the (pretrained) pixel encoder."""
  return deeplab2_key.startswith(BACKBONE_ROOT)


@dataclasses.dataclass
class VariableGroups:
  """The model's trainable variables sorted by how the optimizer treats them."""
  head: List[tf.Variable]
  backbone: List[tf.Variable]
  decayed: List[tf.Variable]
  not_decayed: List[tf.Variable]


def group_variables(model) -> VariableGroups:
  """Groups `model.trainable_variables` using their DeepLab2 checkpoint keys."""
  key_of = {id(v): k for k, v in model.deeplab2_variable_map().items()}
  groups = VariableGroups([], [], [], [])
  for variable in model.trainable_variables:
    key = key_of.get(id(variable))
    if key is None:
      raise ValueError(f"Trainable variable {variable.name} has no DeepLab2 checkpoint key, so "
                       "its weight decay and learning rate cannot be decided.")
    (groups.backbone if is_backbone(key) else groups.head).append(variable)
    (groups.decayed if decays_weight(key) else groups.not_decayed).append(variable)
  return groups


def learning_rate_schedule(solver_options, multiplier: float = 1.0):
  """DeepLab2's schedule: poly or cosine decay over training_number_of_steps, optional warm-up."""
  learning_rate = solver_options.base_learning_rate * multiplier
  steps = solver_options.training_number_of_steps
  policy = solver_options.learning_policy
  if policy == "poly":
    schedule = tf_keras.optimizers.schedules.PolynomialDecay(
        initial_learning_rate=learning_rate, decay_steps=steps,
        end_learning_rate=solver_options.poly_end_learning_rate,
        power=solver_options.poly_learning_power, cycle=False)
  elif policy == "cosine":
    schedule = tf_keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate, decay_steps=steps, alpha=0.0)
  else:
    raise ConfigError(f"trainer_options.solver_options.learning_policy {policy!r} is not "
                      "supported; use 'poly' or 'cosine'.")
  if solver_options.warmup_steps < 0:
    raise ConfigError("trainer_options.solver_options.warmup_steps must not be negative, got "
                      f"{solver_options.warmup_steps}.")
  if solver_options.warmup_steps:
    schedule = model_garden_optimization.WarmUp(
        initial_learning_rate=learning_rate, decay_schedule_fn=schedule,
        warmup_steps=solver_options.warmup_steps, name="linear_warmup")
  return schedule


def build_optimizer(solver_options, multiplier: float = 1.0,
                    decayed: Optional[List[tf.Variable]] = None,
                    loss_scale: bool = False, name: str = "optimizer"):
  """One optimizer for `solver_options` (adamw, adam or sgd).

  Keras' legacy optimizers: fused per-variable update kernels, as DeepLab2's.
  """
  schedule = learning_rate_schedule(solver_options, multiplier)
  kind = solver_options.optimizer
  if kind == "adamw":
    optimizer = AdamWeightDecay(
        learning_rate=schedule, weight_decay=solver_options.adamw_weight_decay,
        decayed_variables=decayed or (), beta_1=ADAM_BETA_1, beta_2=ADAM_BETA_2,
        epsilon=ADAM_EPSILON, name=name)
  elif kind == "adam":
    optimizer = tf_keras.optimizers.legacy.Adam(
        learning_rate=schedule, beta_1=ADAM_BETA_1, beta_2=ADAM_BETA_2,
        epsilon=ADAM_EPSILON, name=name)
  elif kind == "sgd":
    optimizer = tf_keras.optimizers.legacy.SGD(learning_rate=schedule, momentum=SGD_MOMENTUM,
                                               name=name)
  else:
    raise ConfigError(f"trainer_options.solver_options.optimizer {kind!r} is not supported; "
                      "use 'adamw', 'adam' or 'sgd'.")
  if loss_scale:
    optimizer = tf_keras.mixed_precision.LossScaleOptimizer(optimizer)
  return optimizer


def build_optimizers(solver_options, groups: VariableGroups,
                     loss_scale: bool = False) -> Dict[str, tf_keras.optimizers.Optimizer]:
  """{"optimizer": ..., and "backbone_optimizer" when the multiplier is set}, with slots.

  The names are DeepLab2's checkpoint roots for its two optimizers. Slots and
  step counters are created here (call inside the strategy scope), so no
  variable is created while the training step is traced (which would trace it
  twice) and a resumed run restores them directly.
  """
  optimizers = {"optimizer": build_optimizer(solver_options, 1.0, groups.decayed,
                                             loss_scale, name="optimizer")}
  if solver_options.HasField("backbone_learning_rate_multiplier"):
    optimizers["backbone_optimizer"] = build_optimizer(
        solver_options, solver_options.backbone_learning_rate_multiplier, groups.decayed,
        loss_scale, name="backbone_optimizer")
    _create_slots(optimizers["optimizer"], groups.head)
    _create_slots(optimizers["backbone_optimizer"], groups.backbone)
  else:
    _create_slots(optimizers["optimizer"], groups.head + groups.backbone)
  return optimizers


def _create_slots(optimizer, variables):
  inner = getattr(optimizer, "inner_optimizer", optimizer)
  inner._create_all_weights(variables)  # pylint: disable=protected-access
  if inner is not optimizer:
    _ = optimizer.iterations


def current_learning_rate(optimizer, step) -> tf.Tensor:
  """The learning rate `optimizer` applies at `step`."""
  learning_rate = getattr(optimizer, "inner_optimizer", optimizer)._get_hyper("learning_rate")  # pylint: disable=protected-access
  if isinstance(learning_rate, tf_keras.optimizers.schedules.LearningRateSchedule):
    return learning_rate(step)
  return tf.convert_to_tensor(learning_rate)


def l2_penalty(decayed: List[tf.Variable], weight_decay: float) -> tf.Tensor:
  """(weight_decay / 2) * sum of squared decayed kernels (Keras l2 regularizer)."""
  return (weight_decay / 2.0) * tf.add_n([tf.reduce_sum(tf.square(tf.cast(v, tf.float32)))
                                          for v in decayed])
