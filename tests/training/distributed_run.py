"""Runs a few kMaX-DeepLab training steps under one tf.distribute strategy (test helper).

kMaX-DeepLab: Yu et al., "k-means Mask Transformer", ECCV 2022.

Used by test_distribution.py, one process per run (logical CPU devices and
multi-worker clusters must be set up before TensorFlow starts). Every run
trains the real model, loss, optimizer and KMaXTrainer on the same fixed global
batch of synthetic scenes; only how the batch is split over replicas differs:

  single replica:        one batch of all G examples per step
  mirrored, R replicas:  replica r gets examples [r*G/R, (r+1)*G/R)
  multi-worker, W:       worker w (one replica each) gets [w*G/W, (w+1)*G/W)

so with synchronized batch norm (in every run) the runs compute the same
function and their losses and weights must agree up to floating-point
reduction order. The optimizer is SGD by default: Adam divides each update by
the gradient's running RMS, which turns rounding-level differences of
parameters whose gradient is ~0 into +-learning-rate steps and hides gradient
scaling mistakes; SGD shows both.

  python tests/training/distributed_run.py --strategy=mirrored --num_cpu_devices=2 \
      --out=/tmp/run.npz [--init=<checkpoint prefix>] [--write_init=<prefix>]
"""
import argparse
import json
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "demo", "kmax_demo.textproto")


def _parse():
  parser = argparse.ArgumentParser()
  parser.add_argument("--strategy", default="one_device")
  parser.add_argument("--num_cpu_devices", type=int, default=0)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--global_batch", type=int, default=2)
  parser.add_argument("--crop", type=int, default=65)
  parser.add_argument("--optimizer", default="sgd")
  parser.add_argument("--learning_rate", type=float, default=0.05)
  parser.add_argument("--out", required=True)
  parser.add_argument("--init", default="")
  parser.add_argument("--write_init", default="")
  parser.add_argument("--jit_compile", action="store_true")
  return parser.parse_args()


def _weights(model):
  # Reading a synchronized batch norm's moving statistics (ON_READ variables)
  # is a collective across workers, so every worker must read, not only the chief.
  return {f"{i:04d}|{v.name}": v.numpy() for i, v in enumerate(model.variables)}


def main():
  args = _parse()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from kmax_tf.training import distribution  # pylint: disable=g-import-not-at-top
  distribution.configure_cpu_devices(args.num_cpu_devices)
  strategy = distribution.create_strategy(args.strategy)

  import tf_keras  # pylint: disable=g-import-not-at-top
  from kmax_tf import model_builder  # pylint: disable=g-import-not-at-top
  from kmax_tf.config import loader  # pylint: disable=g-import-not-at-top
  from kmax_tf.data import datasets  # pylint: disable=g-import-not-at-top
  from kmax_tf.data import tfrecord_format  # pylint: disable=g-import-not-at-top
  from kmax_tf.data.panoptic_sample_generator import PanopticSampleGenerator  # pylint: disable=g-import-not-at-top
  from kmax_tf.demo import synthetic_panoptic  # pylint: disable=g-import-not-at-top
  from kmax_tf.training import checkpoint_init  # pylint: disable=g-import-not-at-top
  from kmax_tf.training import experiment  # pylint: disable=g-import-not-at-top
  from kmax_tf.training import optimizer_builder  # pylint: disable=g-import-not-at-top
  from kmax_tf.training.kmax_trainer import KMaXTrainer  # pylint: disable=g-import-not-at-top
  tf_keras.utils.set_random_seed(0)
  tf.config.experimental.enable_op_determinism()

  descriptor = synthetic_panoptic.descriptor()
  if descriptor.name not in datasets.dataset_names():
    datasets.register_dataset(descriptor)
  crop = args.crop
  config = loader.load_config(CONFIG, [
      f"train_dataset_options.crop_size={crop},{crop}",
      f"eval_dataset_options.crop_size={crop},{crop}",
      f"train_dataset_options.batch_size={args.global_batch}",
      "model_options.kmax_deeplab.num_mask_slots=8",
      "model_options.max_deeplab.instance_discrimination_sample_k=0",
      f"trainer_options.solver_options.training_number_of_steps={args.steps}",
      "trainer_options.solver_options.warmup_steps=0",
      f"trainer_options.solver_options.optimizer={args.optimizer}",
      f"trainer_options.solver_options.base_learning_rate={args.learning_rate}",
  ])

  generator = PanopticSampleGenerator(descriptor, is_training=False, crop_size=(crop, crop))
  examples = []
  for index in range(args.global_batch):
    image, segment_map, segments = synthetic_panoptic.draw_scene(7, "train", index, size=crop)
    label = synthetic_panoptic.panoptic_label(segment_map, segments)
    sample = generator({
        tfrecord_format.IMAGE: tf.constant(image), tfrecord_format.LABEL: tf.constant(label[..., None]),
        tfrecord_format.IMAGE_NAME: tf.constant(f"scene_{index}"),
        tfrecord_format.HEIGHT: tf.constant(crop), tfrecord_format.WIDTH: tf.constant(crop)})
    examples.append({k: v for k, v in sample.items()
                     if k in ("image", "semantic_gt", "semantic_loss_weight",
                              "thing_id_mask_gt", "thing_id_class_gt")})
  stacked = {k: tf.stack([e[k] for e in examples]) for k in examples[0]}

  def per_worker(context):
    replicas = strategy.num_replicas_in_sync
    local = context.num_replicas_in_sync // context.num_input_pipelines
    per_replica = args.global_batch // replicas
    first = context.input_pipeline_id * local
    parts = []
    for r in range(first, first + local):
      part = {k: v[r * per_replica:(r + 1) * per_replica] for k, v in stacked.items()}
      parts.append(tf.data.Dataset.from_tensors((part.pop("image"), part)))
    dataset = parts[0]
    for part in parts[1:]:
      dataset = dataset.concatenate(part)
    return dataset.repeat()

  def dataset_fn(unused_seed, unused_first):
    return strategy.distribute_datasets_from_function(per_worker)

  with strategy.scope():
    # Synchronized batch norm in every run (as DeepLab2 builds kMaX): Keras'
    # plain fused batch norm updates the moving variance with the unbiased
    # (n / (n - 1)) batch variance, the synchronized one with the biased one.
    model = model_builder.build_model(config, synchronized_batch_norm=True, for_training=True)
    if args.write_init:
      tf.train.Checkpoint(model=model).write(args.write_init)
      np.savez(args.write_init + ".npz", **_weights(model))
    if args.init:
      checkpoint_init.initialize_from_checkpoint(model, args.init)
    global_step = tf.Variable(0, dtype=tf.int64, trainable=False,
                              aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    groups = optimizer_builder.group_variables(model)
    optimizers = optimizer_builder.build_optimizers(config.trainer_options.solver_options, groups)
    loss = experiment.build_loss(config, descriptor, sum(model.transformer_decoder.num_layers))
    trainer = KMaXTrainer(model, loss, optimizers, groups, global_step, dataset_fn, seed=0,
                          global_batch_size=args.global_batch, jit_compile=args.jit_compile)
  losses = []
  for _ in range(args.steps):
    logs = trainer.train(tf.constant(1))
    losses.append({k: float(v) for k, v in logs.items() if k.startswith("losses/")})
  weights = _weights(model)
  if distribution.is_chief(strategy):
    np.savez(args.out, **weights)
    with open(args.out + ".json", "w", encoding="utf-8") as f:
      json.dump({"losses": losses, "replicas": strategy.num_replicas_in_sync}, f)
  return 0


if __name__ == "__main__":
  sys.exit(main())
