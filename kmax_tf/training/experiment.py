"""Runs a kMaX-DeepLab experiment: training, evaluation, or both.

The flow is
DeepLab2's train_lib (orbit controller, checkpoints every N steps keeping K,
automatic resume from --model_dir, TensorBoard summaries under
<model_dir>/train and <model_dir>/eval), with these additions:

  - synchronized batch norm whenever there is more than one replica (and the
    config's use_sync_batchnorm is true, its default);
  - optional mixed precision (bfloat16 or float16);
  - initial checkpoints in our or DeepLab2's format, backbone or full model,
    with class-dependent layers re-initialized when the class count differs;
  - a clear error when resuming or evaluating a checkpoint trained for another
    class count;
  - reproducible input across restarts (see kmax_trainer), so a run resumed
    after a crash continues exactly as an uninterrupted run would;
  - multi-worker runs: the chief writes checkpoints and summaries, the other
    workers write theirs to a scratch folder that is removed at the end;
  - evaluation writes PQ to TensorBoard and to JSON files in <model_dir>/eval.
"""
import dataclasses
import os
import shutil
from typing import Dict, Optional

import orbit
import tensorflow as tf
import tf_keras
from absl import logging

from kmax_tf import model_builder
from kmax_tf.checkpoints.deeplab2_checkpoint_reader import CheckpointMismatchError
from kmax_tf.config import loader
from kmax_tf.config.config_error import ConfigError
from kmax_tf.data import input_pipeline
from kmax_tf.data import target_keys
from kmax_tf.data.panoptic_sample_generator import PanopticSampleGenerator
from kmax_tf.evaluation import pq_stats
from kmax_tf.losses.kmax_loss import KMaXLoss
from kmax_tf.training import checkpoint_init
from kmax_tf.training import distribution
from kmax_tf.training import gradient_recomputation as recomputation
from kmax_tf.training import optimizer_builder
from kmax_tf.training.kmax_evaluator import KMaXEvaluator
from kmax_tf.training.kmax_trainer import KMaXTrainer

MODES = ("train", "eval", "train_and_eval", "continuous_eval")
PRECISIONS = model_builder.PRECISIONS
NUM_VISUALIZATIONS = 2
_WORKER_SCRATCH = ".worker_scratch"


@dataclasses.dataclass
class ExperimentResult:
  """What run_experiment returns: the final step and the last evaluation."""
  global_step: int
  eval_results: Optional[Dict] = None


def build_loss(config, descriptor, auxiliary_output_number: int) -> KMaXLoss:
  """KMaXLoss with the config's weights, as DeepLab2's loss builder sets them.

  A term is used only when its options are set (weight 0 otherwise); the
  semantic loss samples no pixels because DeepLab2 does not pass
  semantic_sample_k to its loss.

  Args:
    config: ExperimentOptions (reads trainer_options.loss_options and
      model_options.max_deeplab).
    descriptor: DatasetDescriptor giving the classes, void and thing ids.
    auxiliary_output_number: auxiliary predictions of the transformer decoder
      (its total kMaX layer count, 6 by default) that get deep supervision.
  """
  options = config.trainer_options.loss_options
  max_options = config.model_options.max_deeplab

  def weight(name):
    return getattr(options, name).weight if options.HasField(name) else 0.0

  def top_k(name):
    return getattr(options, name).top_k_percent if options.HasField(name) else 1.0

  return KMaXLoss(
      num_classes=descriptor.num_classes, ignore_label=descriptor.ignore_label,
      thing_class_ids=descriptor.thing_class_ids,
      pq_style_loss_weight=weight("pq_style_loss"),
      mask_id_cross_entropy_loss_weight=weight("mask_id_cross_entropy_loss"),
      instance_discrimination_loss_weight=weight("instance_discrimination_loss"),
      semantic_loss_weight=weight("semantic_loss"),
      mask_id_cross_entropy_top_k_percent=top_k("mask_id_cross_entropy_loss"),
      instance_discrimination_top_k_percent=top_k("instance_discrimination_loss"),
      semantic_top_k_percent=top_k("semantic_loss"),
      instance_discrimination_sample_k=max_options.instance_discrimination_sample_k,
      instance_discrimination_sample_temperature=(
          max_options.instance_discrimination_sample_temperature),
      semantic_sample_k=0,
      auxiliary_output_number=auxiliary_output_number,
      name="kmax_loss")


def _check_config(config, mode: str, num_replicas: int) -> None:
  placeholders = loader.unresolved_placeholders(config)
  if placeholders:
    raise ConfigError("the config still has placeholders; replace them (or use "
                      "--config_override): " + "; ".join(placeholders))
  trainer = config.trainer_options
  if "train" in mode:
    train = config.train_dataset_options
    if not train.dataset:
      raise ConfigError("train_dataset_options.dataset is not set")
    if len(train.crop_size) != 2:
      raise ConfigError(f"train_dataset_options.crop_size must hold 2 values, got "
                        f"{list(train.crop_size)}")
    if train.batch_size % num_replicas:
      raise ConfigError(f"train_dataset_options.batch_size ({train.batch_size}) must be a "
                        f"multiple of the number of replicas ({num_replicas})")
    if not train.thing_id_mask_annotations:
      raise ConfigError("kMaX-DeepLab's losses need per-instance masks: set "
                        "train_dataset_options.thing_id_mask_annotations: true")
    if trainer.steps_per_loop <= 0 or trainer.save_summaries_steps % trainer.steps_per_loop:
      raise ConfigError(f"trainer_options.save_summaries_steps ({trainer.save_summaries_steps}) "
                        f"must be a multiple of steps_per_loop ({trainer.steps_per_loop})")
  if "eval" in mode and not config.eval_dataset_options.dataset:
    raise ConfigError("eval_dataset_options.dataset is not set")


def _descriptor(dataset_options):
  files = input_pipeline.list_record_files(list(dataset_options.file_pattern),
                                           dataset_options.dataset)
  return input_pipeline.resolve_descriptor(dataset_options.dataset, files)


def run_experiment(config, model_dir: str, mode: str,
                   strategy: Optional[tf.distribute.Strategy] = None, *,
                   seed: int = 0, precision: str = "float32",
                   gradient_recomputation: bool = False,
                   jit_compile: bool = False,
                   train_actions=()) -> ExperimentResult:
  """Trains and/or evaluates the model of `config` in `model_dir`.

  Args:
    config: ExperimentOptions (kmax_tf.load_config).
    model_dir: checkpoints, summaries and evaluation results; an existing
      checkpoint there is resumed.
    mode: one of MODES.
    strategy: tf.distribute strategy (default: the current one).
    seed: seed of the training input pipeline (and of weight initialization
      when the caller set tf.random's global seed from it).
    precision: "float32", or mixed "bfloat16" / "float16" computation.
    gradient_recomputation: recompute the pixel encoder's and pixel decoder's
      activations in the backward pass instead of keeping them (less memory,
      about one more forward pass of them per step); a part with active drop
      path is left as is.
    jit_compile: compile each replica's forward pass, loss and gradients
      with XLA (KMaXTrainer's jit_compile).
    train_actions: callables given each inner loop's training logs (orbit
      actions), e.g. progress reports.

  Returns:
    ExperimentResult with the final global step and, in eval modes, the
    panopticapi-style PQ result dict of the last evaluation.

  Raises:
    ConfigError / PanopticDataError / CheckpointMismatchError with messages
    saying what to change.
  """
  if mode not in MODES:
    raise ValueError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
  strategy = strategy or tf.distribute.get_strategy()
  _check_config(config, mode, strategy.num_replicas_in_sync)
  training = "train" in mode
  evaluating = "eval" in mode
  train_descriptor = _descriptor(config.train_dataset_options) if training else None
  eval_descriptor = _descriptor(config.eval_dataset_options) if evaluating else None
  descriptor = train_descriptor or eval_descriptor
  chief = distribution.is_chief(strategy)
  scratch = os.path.join(model_dir, _WORKER_SCRATCH, distribution.worker_name(strategy))
  own_dir = model_dir if chief else scratch
  if not chief:
    shutil.rmtree(scratch, ignore_errors=True)
  tf.io.gfile.makedirs(own_dir)

  previous_policy = model_builder.set_precision(precision)
  try:
    with strategy.scope():
      sync = (strategy.num_replicas_in_sync > 1
              and config.trainer_options.solver_options.use_sync_batchnorm)
      model = model_builder.build_model(config, synchronized_batch_norm=sync,
                                        for_training=training)
      if training and gradient_recomputation:
        _enable_recomputation(model)
      global_step = orbit.utils.create_global_step()
      optimizers = {}
      groups = None
      if training:
        groups = optimizer_builder.group_variables(model)
        optimizers = optimizer_builder.build_optimizers(
            config.trainer_options.solver_options, groups, loss_scale=precision == "float16")
    checkpoint = tf.train.Checkpoint(model=model, global_step=global_step, **optimizers)
    manager = tf.train.CheckpointManager(
        checkpoint, own_dir, max_to_keep=config.trainer_options.num_checkpoints_to_keep,
        step_counter=global_step,
        checkpoint_interval=config.trainer_options.save_checkpoints_steps)
    restored = _restore_or_initialize(config, model, checkpoint, model_dir, mode, descriptor)

    trainer = evaluator = None
    with strategy.scope():
      if training:
        trainer = _make_trainer(config, model, optimizers, groups, global_step, strategy,
                                train_descriptor, eval_descriptor if evaluating else None,
                                seed, chief, jit_compile=jit_compile)
      if evaluating:
        evaluator = _make_evaluator(config, model, eval_descriptor, global_step, strategy,
                                    os.path.join(model_dir, "eval") if chief else None)
    controller = orbit.Controller(
        strategy=strategy, trainer=trainer, evaluator=evaluator, global_step=global_step,
        train_actions=train_actions if training else None,
        steps_per_loop=config.trainer_options.steps_per_loop if training else None,
        checkpoint_manager=None,
        summary_interval=config.trainer_options.save_summaries_steps if training else None,
        summary_dir=os.path.join(own_dir, "train"),
        eval_summary_dir=os.path.join(own_dir, "eval"))
    # Restoring was done above (with class-count checks); the controller only saves.
    controller.checkpoint_manager = manager

    total_steps = config.trainer_options.solver_options.training_number_of_steps
    if training and not restored:
      manager.save(checkpoint_number=global_step, check_interval=False)
    if mode == "train":
      controller.train(steps=total_steps)
    elif mode == "train_and_eval" and int(global_step.numpy()) >= total_steps:
      # Training already finished (a re-run): still report the evaluation.
      controller.evaluate(steps=config.evaluator_options.eval_steps)
    elif mode == "train_and_eval":
      controller.train_and_evaluate(train_steps=total_steps,
                                    eval_steps=config.evaluator_options.eval_steps,
                                    eval_interval=config.evaluator_options.eval_interval)
    elif mode == "eval":
      controller.evaluate(steps=config.evaluator_options.eval_steps)
    else:
      _evaluate_continuously(config, controller, checkpoint, model, model_dir, descriptor,
                             global_step, total_steps)
    results = evaluator.last_results if evaluator is not None else None
    if results is not None and chief:
      logging.info("Panoptic quality at step %d:\n%s", int(global_step.numpy()),
                   pq_stats.format_table(results))
    return ExperimentResult(int(global_step.numpy()), results)
  finally:
    tf_keras.mixed_precision.set_global_policy(previous_policy)
    if not chief:
      shutil.rmtree(scratch, ignore_errors=True)


def _enable_recomputation(model) -> None:
  for part in (model.pixel_encoder, model.pixel_decoder):
    stochastic = recomputation.stochastic_sublayers(part)
    if stochastic:
      logging.warning("Not recomputing %s: drop path is active in it (%d layers).", part.name,
                      len(stochastic))
    else:
      recomputation.enable(part)
      logging.info("Recomputing the activations of %s in the backward pass.", part.name)


def _restore_or_initialize(config, model, checkpoint, model_dir, mode, descriptor) -> bool:
  """Restores the latest checkpoint of model_dir or loads initial_checkpoint.

  Returns whether a model_dir checkpoint was restored.
  """
  latest = tf.train.latest_checkpoint(model_dir)
  if mode == "continuous_eval":
    return latest is not None
  if latest:
    checkpoint_init.check_same_classes(model, latest, descriptor.num_classes, descriptor.name)
    status = checkpoint.restore(latest)
    if mode == "eval":
      status.expect_partial()
    status.assert_existing_objects_matched()
    logging.info("Restored %s", latest)
    return True
  initial = config.model_options.initial_checkpoint
  if initial:
    logging.info("Initialized from %s", checkpoint_init.initialize_from_checkpoint(model, initial))
  elif mode == "eval":
    raise CheckpointMismatchError(
        f"Nothing to evaluate: --model_dir {model_dir} has no checkpoint and "
        "model_options.initial_checkpoint is empty.")
  elif config.model_options.backbone.pretrained_weights:
    logging.info("Backbone from %s", checkpoint_init.initialize_from_checkpoint(
        model, config.model_options.backbone.pretrained_weights))
  return False


def _evaluate_continuously(config, controller, checkpoint, model, model_dir, descriptor,
                           global_step, total_steps):
  timeout = config.evaluator_options.continuous_eval_timeout
  for path in tf.train.checkpoints_iterator(
      model_dir, timeout=None if timeout < 0 else timeout,
      timeout_fn=lambda: int(global_step.numpy()) >= total_steps):
    checkpoint_init.check_same_classes(model, path, descriptor.num_classes, descriptor.name)
    checkpoint.restore(path).expect_partial()
    controller.evaluate(steps=config.evaluator_options.eval_steps)
    if int(global_step.numpy()) >= total_steps:
      break


def _make_trainer(config, model, optimizers, groups, global_step, strategy, descriptor,
                  eval_descriptor, seed, chief, jit_compile=False) -> KMaXTrainer:
  options = config.train_dataset_options
  solver = config.trainer_options.solver_options

  def dataset_fn(segment_seed, first):
    def per_worker(context):
      return input_pipeline.make_dataset(
          options, descriptor, is_training=True, seed=segment_seed, input_context=context,
          check_records="headers" if first else "none")
    return strategy.distribute_datasets_from_function(per_worker)

  images = targets = None
  if chief:
    images, targets = _visualization_batch(config, descriptor, eval_descriptor, seed)
  loss = build_loss(config, descriptor, sum(model.transformer_decoder.num_layers))
  return KMaXTrainer(
      model, loss, optimizers, groups, global_step, dataset_fn, seed=seed,
      global_batch_size=options.batch_size,
      clip_gradient_norm=solver.clip_gradient_norm if solver.use_gradient_clipping else 0.0,
      l2_weight_decay=solver.weight_decay,
      visualization_images=images, visualization_targets=targets,
      class_colors=descriptor.class_colors, label_divisor=descriptor.panoptic_label_divisor,
      jit_compile=jit_compile)


def _visualization_batch(config, descriptor, eval_descriptor, seed):
  """A few images (eval set if there is one) whose predictions TensorBoard shows."""
  if eval_descriptor is not None:
    dataset = input_pipeline.make_dataset(config.eval_dataset_options, eval_descriptor,
                                          is_training=False, check_records="none")
  else:
    dataset = input_pipeline.make_dataset(config.train_dataset_options, descriptor,
                                          is_training=True, seed=seed, check_records="none")
  # Only the crop-sized tensors: raw labels differ in size between images.
  dataset = dataset.map(lambda images, targets: (images, targets[target_keys.PANOPTIC_GT]))
  images, panoptic = next(iter(dataset.unbatch().batch(NUM_VISUALIZATIONS).take(1)))
  return images, {target_keys.PANOPTIC_GT: panoptic}


def _make_evaluator(config, model, descriptor, global_step, strategy, output_dir):
  options = config.eval_dataset_options
  distributed = isinstance(strategy, tf.distribute.TPUStrategy)

  def dataset_fn():
    dataset = input_pipeline.make_dataset(options, descriptor, is_training=False,
                                          check_records="none")
    return strategy.experimental_distribute_dataset(dataset) if distributed else dataset

  generator = PanopticSampleGenerator.from_dataset_options(options, descriptor, False)
  resize = (generator.min_resize_value, generator.max_resize_value, generator.resize_factor)
  evaluator_options = config.evaluator_options
  prediction_dir = None
  if evaluator_options.save_predictions and output_dir:
    prediction_dir = (evaluator_options.override_save_dir
                      or os.path.join(output_dir, "predictions"))
  return KMaXEvaluator(model, dataset_fn, descriptor, resize, global_step, output_dir,
                       distributed=distributed, prediction_dir=prediction_dir,
                       detailed_ap_metrics=evaluator_options.detailed_ap_metrics)
