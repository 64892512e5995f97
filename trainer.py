r"""Trains and evaluates kMaX-DeepLab (Yu et al., "k-means Mask Transformer", ECCV 2022).

  python trainer.py --config_file=configs/coco/kmax_r50.textproto \
      --model_dir=runs/kmax_r50_coco --mode=train_and_eval

Modes: train, eval, train_and_eval, continuous_eval (evaluates each new
checkpoint of --model_dir until training_number_of_steps). A --model_dir that
holds a checkpoint is resumed. Strategies: one_device (default: first GPU,
else CPU), mirrored (--num_gpus GPUs, or every logical CPU), multi_worker_mirrored
(cluster from TF_CONFIG), tpu (--tpu). Config fields can be changed from the
command line: --config_override=train_dataset_options.batch_size=16 (repeatable).

The demo (synthetic data, trains on a laptop CPU): python -m kmax_tf.demo
"""
import os
import sys

from absl import app
from absl import flags
from absl import logging

_MODES = ("train", "eval", "train_and_eval", "continuous_eval")
_STRATEGIES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")

FLAGS = flags.FLAGS
flags.DEFINE_string("config_file", None, "Experiment config (text-format ExperimentOptions).")
flags.DEFINE_string("model_dir", None,
                    "Checkpoints, TensorBoard summaries and evaluation results. Default: "
                    "runs/<experiment_name>.")
flags.DEFINE_enum("mode", "train", _MODES, "What to run.")
flags.DEFINE_enum("strategy", "one_device", _STRATEGIES, "tf.distribute strategy.")
flags.DEFINE_integer("num_gpus", 0, "GPUs to use (0: CPU).")
flags.DEFINE_string("tpu", None, "TPU name or address (--strategy=tpu); 'local' for a TPU VM.")
flags.DEFINE_multi_string("config_override", [],
                          "dotted.field=value changes to the config, applied in order, e.g. "
                          "train_dataset_options.batch_size=8.")
flags.DEFINE_enum("mixed_precision", "float32", ("float32", "bfloat16", "float16"),
                  "Computation dtype (variables stay float32).")
flags.DEFINE_bool("gradient_recomputation", False,
                  "Recompute pixel encoder / decoder activations in the backward pass: less "
                  "memory, more compute.")
flags.DEFINE_bool("jit_compile", False,
                  "Compile each replica's forward pass, loss and gradients with XLA (TPUs "
                  "always do; often faster on GPUs).")
flags.DEFINE_integer("seed", 0, "Seed of weight initialization and of the input pipeline.")
flags.DEFINE_bool("deterministic", False,
                  "Deterministic TF ops (bit-reproducible runs; slower).")
flags.DEFINE_integer("num_cpu_devices", 0,
                     "Split the CPU into this many logical devices (e.g. to try "
                     "--strategy=mirrored without accelerators).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not FLAGS.config_file:
    raise app.UsageError("--config_file is required.")
  # The config is checked before TensorFlow is imported, so mistakes in it are
  # reported instantly.
  from kmax_tf.config import loader  # pylint: disable=g-import-not-at-top
  from kmax_tf.config.config_error import ConfigError  # pylint: disable=g-import-not-at-top
  try:
    config = loader.load_config(FLAGS.config_file, FLAGS.config_override)
  except (ConfigError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2

  from kmax_tf.lean_tensorflow_import import import_tensorflow_lean  # pylint: disable=g-import-not-at-top
  tf = import_tensorflow_lean()
  import tf_keras  # pylint: disable=g-import-not-at-top
  from kmax_tf.checkpoints.deeplab2_checkpoint_reader import CheckpointMismatchError  # pylint: disable=g-import-not-at-top
  from kmax_tf.data.panoptic_data_error import PanopticDataError  # pylint: disable=g-import-not-at-top
  from kmax_tf.training import distribution  # pylint: disable=g-import-not-at-top
  from kmax_tf.training import experiment  # pylint: disable=g-import-not-at-top
  model_dir = FLAGS.model_dir or os.path.join("runs", config.experiment_name or "kmax")
  distribution.configure_cpu_devices(FLAGS.num_cpu_devices)
  tf_keras.utils.set_random_seed(FLAGS.seed)
  if FLAGS.deterministic:
    tf.config.experimental.enable_op_determinism()
  try:
    strategy = distribution.create_strategy(FLAGS.strategy, FLAGS.num_gpus, FLAGS.tpu)
    logging.info("Strategy %s with %d replica(s)", type(strategy).__name__,
                 strategy.num_replicas_in_sync)
    result = experiment.run_experiment(config, model_dir, FLAGS.mode, strategy,
                                       seed=FLAGS.seed, precision=FLAGS.mixed_precision,
                                       gradient_recomputation=FLAGS.gradient_recomputation,
                                       jit_compile=FLAGS.jit_compile)
  except (ConfigError, PanopticDataError, CheckpointMismatchError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if result.eval_results is not None:
    print(f"PQ at step {result.global_step}: {100 * result.eval_results['All']['pq']:.2f} "
          f"(things {100 * result.eval_results['Things']['pq']:.2f}, "
          f"stuff {100 * result.eval_results['Stuff']['pq']:.2f}); details in "
          f"{os.path.join(model_dir, 'eval')}")
  return 0


if __name__ == "__main__":
  app.run(main)
