r"""Trains and evaluates kMaX-DeepLab.

  python trainer.py --config_file=configs/coco/kmax_r50.textproto \
      --model_dir=runs/kmax_r50_coco --mode=train_and_eval

Modes: train, eval, train_and_eval, continuous_eval (evaluates each new
checkpoint of --model_dir until training_number_of_steps). A --model_dir that
holds a checkpoint is resumed. Strategies: one_device (default: first GPU,
else CPU), mirrored (--num_gpus GPUs, or every logical CPU), multi_worker_mirrored
(cluster from TF_CONFIG), tpu (--tpu). Config fields can be changed from the
command line: --config_override=train_dataset_options.batch_size=16 (repeatable).

Also installed as `kmax-train`. The demo (synthetic data, trains on a laptop CPU):
python -m kmax_tf.demo (`kmax-demo`).
"""
import os
import sys

from absl import flags
from absl import logging

from kmax_tf import cli

_MODES = ("train", "eval", "train_and_eval", "continuous_eval")
_STRATEGIES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")

_FLAGS = flags.FlagValues()
cli.define_config_flags(_FLAGS)
flags.DEFINE_string("model_dir", None,
                    "Checkpoints, TensorBoard summaries and evaluation results. Default: "
                    "runs/<experiment_name>.", flag_values=_FLAGS)
flags.DEFINE_enum("mode", "train", _MODES, "What to run.", flag_values=_FLAGS)
flags.DEFINE_enum("strategy", "one_device", _STRATEGIES, "tf.distribute strategy.",
                  flag_values=_FLAGS)
flags.DEFINE_integer("num_gpus", 0, "GPUs to use (0: CPU).", flag_values=_FLAGS)
flags.DEFINE_string("tpu", None, "TPU name or address (--strategy=tpu); 'local' for a TPU VM.",
                    flag_values=_FLAGS)
flags.DEFINE_enum("mixed_precision", "float32", ("float32", "bfloat16", "float16"),
                  "Computation dtype (variables stay float32).", flag_values=_FLAGS)
flags.DEFINE_bool("gradient_recomputation", False,
                  "Recompute pixel encoder / decoder activations in the backward pass: less "
                  "memory, more compute.", flag_values=_FLAGS)
flags.DEFINE_bool("jit_compile", False,
                  "Compile each replica's forward pass, loss and gradients with XLA (TPUs "
                  "always do; often faster on GPUs).", flag_values=_FLAGS)
flags.DEFINE_integer("seed", 0, "Seed of weight initialization and of the input pipeline.",
                     flag_values=_FLAGS)
flags.DEFINE_bool("deterministic", False,
                  "Deterministic TF ops (bit-reproducible runs; slower).", flag_values=_FLAGS)
flags.DEFINE_integer("num_cpu_devices", 0,
                     "Split the CPU into this many logical devices (e.g. to try "
                     "--strategy=mirrored without accelerators).", flag_values=_FLAGS)



class _InputError(Exception):
  """A data or checkpoint mistake (their exception types live in modules that import
  TensorFlow, which the command imports only after the config is checked)."""


def _train_command(f: flags.FlagValues) -> int:
  # The config is checked before TensorFlow is imported, so mistakes in it are
  # reported instantly.
  from kmax_tf.config import loader  # pylint: disable=g-import-not-at-top
  from kmax_tf.config.config_error import ConfigError  # pylint: disable=g-import-not-at-top
  try:
    config = loader.load_config(f.config_file, f.config_override)
  except OSError as e:
    raise ConfigError(str(e)) from None

  from kmax_tf.runtime.lean_import import import_tensorflow_lean  # pylint: disable=g-import-not-at-top
  tf = import_tensorflow_lean()
  import tf_keras  # pylint: disable=g-import-not-at-top
  from kmax_tf.checkpoints.deeplab2_checkpoint_reader import CheckpointMismatchError  # pylint: disable=g-import-not-at-top
  from kmax_tf.data.panoptic_data_error import PanopticDataError  # pylint: disable=g-import-not-at-top
  from kmax_tf.runtime.heap_trimmer import HeapTrimmer  # pylint: disable=g-import-not-at-top
  from kmax_tf.training import distribution  # pylint: disable=g-import-not-at-top
  from kmax_tf.training import experiment  # pylint: disable=g-import-not-at-top
  model_dir = f.model_dir or os.path.join("runs", config.experiment_name or "kmax")
  distribution.configure_cpu_devices(f.num_cpu_devices)
  tf_keras.utils.set_random_seed(f.seed)
  if f.deterministic:
    tf.config.experimental.enable_op_determinism()
  try:
    strategy = distribution.create_strategy(f.strategy, f.num_gpus, f.tpu)
    logging.info("Strategy %s with %d replica(s)", type(strategy).__name__,
                 strategy.num_replicas_in_sync)
    with HeapTrimmer():
      result = experiment.run_experiment(config, model_dir, f.mode, strategy,
                                         seed=f.seed, precision=f.mixed_precision,
                                         gradient_recomputation=f.gradient_recomputation,
                                         jit_compile=f.jit_compile)
  except (PanopticDataError, CheckpointMismatchError) as e:
    raise _InputError(str(e)) from None
  if result.eval_results is not None:
    print(f"PQ at step {result.global_step}: {100 * result.eval_results['All']['pq']:.2f} "
          f"(things {100 * result.eval_results['Things']['pq']:.2f}, "
          f"stuff {100 * result.eval_results['Stuff']['pq']:.2f}); details in "
          f"{os.path.join(model_dir, 'eval')}")
  return 0


def _input_errors():
  from kmax_tf.config.config_error import ConfigError  # pylint: disable=g-import-not-at-top
  return (ConfigError, _InputError)


main = cli.command(_FLAGS, _train_command, __doc__, input_errors=_input_errors())


if __name__ == "__main__":
  sys.exit(main())
