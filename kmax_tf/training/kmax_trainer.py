"""The training inner loop of kMaX-DeepLab, as an orbit StandardTrainer.

The step is
DeepLab2's: every loss term is averaged over the (per-replica) batch with NaN
replaced by 0, the total is divided by the number of replicas (gradients are
summed across replicas), optional gradient clipping by global norm, and the
gradients go to two optimizers when the backbone has its own learning-rate
multiplier.

Reproducible input across restarts: the training input is rebuilt at the start
of every inner loop with a seed derived from (seed, global step). Checkpoints
are only written between loops, so a run resumed from any checkpoint sees
exactly the examples an uninterrupted run sees from that step on, without
storing the (large) shuffle buffers in checkpoints.
"""
import time
from typing import Callable, Dict, Optional

import orbit
import tensorflow as tf
import tf_keras

from kmax_tf import outputs as output_keys
from kmax_tf.losses.kmax_loss import KMaXLoss
from kmax_tf.training import optimizer_builder
from kmax_tf.training import panoptic_overlay

TOTAL_LOSS = "total_loss"


def derived_seed(seed: int, step: int) -> int:
  """A 31-bit seed for the input pipeline segment that starts at `step`.

  Args:
    seed: the experiment's base seed.
    step: global step at which the segment starts.
  """
  return (int(seed) * 1_000_003 + int(step) * 7_919 + 17) % (2**31 - 1)


class KMaXTrainer(orbit.StandardTrainer):
  """Trains a KMaXDeepLab model with KMaXLoss under any tf.distribute strategy."""

  def __init__(self,
               model: tf_keras.Model,
               loss: KMaXLoss,
               optimizers: Dict[str, tf_keras.optimizers.Optimizer],
               variable_groups: optimizer_builder.VariableGroups,
               global_step: tf.Variable,
               dataset_fn: Callable[[int, bool], object],
               seed: int,
               global_batch_size: int,
               clip_gradient_norm: float = 0.0,
               l2_weight_decay: float = 0.0,
               visualization_images: Optional[tf.Tensor] = None,
               visualization_targets: Optional[Dict[str, tf.Tensor]] = None,
               class_colors=None,
               label_divisor: int = 1000,
               use_tf_while_loop: bool = True,
               jit_compile: bool = False):
    """Creates the trainer (inside the strategy scope).

    Args:
      model: KMaXDeepLab built with for_training=True.
      loss: the loss; its output names are reported as losses/train_<name>.
      optimizers: {"optimizer": ..., optional "backbone_optimizer": ...}.
      variable_groups: which variables each optimizer updates / decays.
      global_step: orbit global step variable.
      dataset_fn: (seed, first) -> distributed training dataset; `first` is
        True for the first dataset of the process (record checks run then).
      seed: base seed of the input pipeline.
      global_batch_size: examples per step over all replicas (throughput).
      clip_gradient_norm: > 0 clips each replica's gradients by global norm
        before they are summed (DeepLab2's order).
      l2_weight_decay: solver weight_decay (L2 on kernels), 0 for none.
      visualization_images: [K, H, W, 3] images whose predictions are written
        to TensorBoard at each summary step (None: no overlays).
      visualization_targets: their targets (panoptic_gt is shown when present).
      class_colors: [num_classes, 3] colours of the overlay.
      label_divisor: panoptic label divisor of the dataset.
      use_tf_while_loop: run the inner loop as one tf.while_loop.
      jit_compile: compile each replica's forward pass, loss and gradients
        with XLA (what TPUs do anyway; on GPUs usually faster). The optimizer
        update stays outside: under a multi-replica strategy it all-reduces.
    """
    self._strategy = tf.distribute.get_strategy()
    self._model = model
    self._loss = loss
    self._optimizers = optimizers
    self._groups = variable_groups
    self._global_step = global_step
    self._dataset_fn = dataset_fn
    self._seed = int(seed)
    self._global_batch_size = int(global_batch_size)
    self._clip_gradient_norm = float(clip_gradient_norm)
    self._l2_weight_decay = float(l2_weight_decay)
    self._visualization_images = visualization_images
    self._visualization_targets = visualization_targets or {}
    self._class_colors = class_colors
    self._label_divisor = int(label_divisor)
    self._first_dataset = True
    self._loop_start = None
    self._loop_start_step = 0
    self._head_ids = {id(v) for v in variable_groups.head}
    self._loss_metrics = {name: tf_keras.metrics.Mean("train_" + name, dtype=tf.float32)
                          for name in loss.loss_names}
    self._predict_fn = None
    self._losses_and_gradients = (
        tf.function(self._compute_losses_and_gradients, jit_compile=True)
        if jit_compile else self._compute_losses_and_gradients)
    super().__init__(None, orbit.StandardTrainerOptions(use_tf_while_loop=use_tf_while_loop))

  @property
  def model(self):
    return self._model

  @property
  def optimizers(self):
    return self._optimizers

  @property
  def global_step(self):
    return self._global_step

  # === Loop ===
  def train_loop_begin(self):
    for metric in self._loss_metrics.values():
      metric.reset_state()
    step = int(self._global_step.numpy())
    # A fresh, step-seeded input segment per loop: see the module docstring.
    self.train_dataset = self._dataset_fn(derived_seed(self._seed, step), self._first_dataset)
    self._first_dataset = False
    self._loop_start = time.time()
    self._loop_start_step = step

  def train_step(self, iterator):
    """Runs one optimizer step on every replica and increments the global step.

    Args:
      iterator: distributed iterator of (images float32 [B, crop_h, crop_w, 3]
        in 0..255, targets dict from the panoptic sample generator) batches.
    """
    def step_fn(inputs):
      self._replica_step(*inputs)
      self._global_step.assign_add(1)
    self._strategy.run(step_fn, args=(next(iterator),))

  def _replica_step(self, images, targets):
    losses, gradients = self._losses_and_gradients(images, targets)
    variables = self._groups.head + self._groups.backbone
    pairs = list(zip(gradients, variables))
    optimizer = self._optimizers["optimizer"]
    backbone_optimizer = self._optimizers.get("backbone_optimizer")
    if backbone_optimizer is None:
      optimizer.apply_gradients(pairs)
    else:
      optimizer.apply_gradients([p for p in pairs if id(p[1]) in self._head_ids])
      backbone_optimizer.apply_gradients([p for p in pairs if id(p[1]) not in self._head_ids])
    for name, value in losses.items():
      self._loss_metrics[name].update_state(value)

  def _compute_losses_and_gradients(self, images, targets):
    optimizer = self._optimizers["optimizer"]
    num_replicas = self._strategy.num_replicas_in_sync
    with tf.GradientTape() as tape:
      predictions = self._model(images, training=True)
      losses = KMaXLoss.average_over_batch(self._loss(targets, predictions))
      total = losses[TOTAL_LOSS]
      if self._l2_weight_decay > 0:
        total += optimizer_builder.l2_penalty(self._groups.decayed, self._l2_weight_decay)
      scaled = total / num_replicas
      loss_scaled = isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
      if loss_scaled:
        scaled = optimizer.get_scaled_loss(scaled)
    variables = self._groups.head + self._groups.backbone
    gradients = tape.gradient(scaled, variables)
    if loss_scaled:
      gradients = optimizer.get_unscaled_gradients(gradients)
    if self._clip_gradient_norm > 0:
      gradients, _ = tf.clip_by_global_norm(gradients, self._clip_gradient_norm)
    return losses, gradients

  def train_loop_end(self):
    logs = {"losses/" + metric.name: metric.result() for metric in self._loss_metrics.values()}
    step = self._global_step.numpy()
    logs["learning_rate"] = optimizer_builder.current_learning_rate(
        self._optimizers["optimizer"], self._optimizers["optimizer"].iterations)
    if "backbone_optimizer" in self._optimizers:
      logs["backbone_learning_rate"] = optimizer_builder.current_learning_rate(
          self._optimizers["backbone_optimizer"], self._optimizers["backbone_optimizer"].iterations)
    elapsed = time.time() - self._loop_start
    steps = step - self._loop_start_step
    if elapsed > 0 and steps > 0:
      logs["throughput/examples_per_second"] = steps * self._global_batch_size / elapsed
      logs["throughput/seconds_per_step"] = elapsed / steps
    self._write_overlays()
    return logs

  # === Prediction overlays ===
  def _write_overlays(self):
    if self._visualization_images is None or not tf.summary.should_record_summaries():
      return
    if self._predict_fn is None:
      model = self._model
      strategy = self._strategy

      @tf.function
      def predict(images):
        results = strategy.run(
            lambda x: model(x, training=False, output_keys=(output_keys.PANOPTIC_PRED,)),
            args=(images,))
        return strategy.experimental_local_results(results)[0][output_keys.PANOPTIC_PRED]
      self._predict_fn = predict
    panoptic = self._predict_fn(self._visualization_images)
    images = panoptic_overlay.overlay_grid(
        self._visualization_images, panoptic, self._class_colors, self._label_divisor,
        self._visualization_targets.get("panoptic_gt"))
    tf.summary.image("predictions", images, max_outputs=int(images.shape[0]))
