r"""The bundled demo: synthetic data -> TFRecords -> training -> PQ, in one command.

  python -m kmax_tf.demo [--work_dir=runs/demo] [--fresh]

A fresh
machine has no COCO, so the demo trains on the package's synthetic panoptic
dataset (kmax_tf.demo.synthetic_panoptic): it writes the scenes in COCO
panoptic format, converts them with the custom-dataset converter exactly as a
user's own data would be (`python -m kmax_tf.data.build_panoptic_tfrecords
--format=custom ...`), trains configs/demo/kmax_demo.textproto with trainer.py's
code path and prints the panoptic quality on the held-out split.

Re-running reuses finished steps: existing data and records are kept and
training resumes from the last checkpoint (--fresh starts over).
"""
import contextlib
import os
import shutil
import sys
import time

from absl import flags
from absl import logging

from kmax_tf import cli
from kmax_tf.demo import synthetic_panoptic

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "configs", "demo", "kmax_demo.textproto")
SPLITS = ("train", "val")

_FLAGS = flags.FlagValues()
flags.DEFINE_string("work_dir", os.path.join("runs", "demo"),
                    "Data, records, checkpoints and results go here.", flag_values=_FLAGS)
flags.DEFINE_string("config_file", DEFAULT_CONFIG, "Demo experiment config.",
                    flag_values=_FLAGS)
flags.DEFINE_multi_string("config_override", [], "dotted.field=value config changes.",
                          flag_values=_FLAGS)
flags.DEFINE_integer("num_train_images", 1500, "Generated training scenes.", flag_values=_FLAGS)
flags.DEFINE_integer("num_val_images", 100, "Generated held-out scenes.", flag_values=_FLAGS)
flags.DEFINE_integer("seed", 0, "Seed of the data, the weights and the input pipeline.",
                     flag_values=_FLAGS)
flags.DEFINE_integer("image_size", 96, "Side of the generated square scenes (pixels).",
                     flag_values=_FLAGS)
flags.DEFINE_bool("fresh", False, "Delete --work_dir first.", flag_values=_FLAGS)


def _generate(raw_dir: str, counts) -> None:
  complete = all(os.path.exists(os.path.join(raw_dir, "annotations", f"panoptic_{s}.json"))
                 for s, _ in counts)
  if not complete:
    synthetic_panoptic.write_dataset(raw_dir, counts, seed=_FLAGS.seed, size=_FLAGS.image_size)


def _convert(raw_dir: str, records_dir: str) -> None:
  from kmax_tf.data import build_panoptic_tfrecords  # pylint: disable=g-import-not-at-top
  from kmax_tf.data import descriptor_json  # pylint: disable=g-import-not-at-top
  if os.path.exists(os.path.join(records_dir, descriptor_json.DESCRIPTOR_FILENAME)):
    return
  # The converter's command line, as a user converting their own data runs it.
  code = build_panoptic_tfrecords.main([
      "--format=custom", f"--root={raw_dir}",
      f"--dataset_name={synthetic_panoptic.DATASET_NAME}", f"--splits={','.join(SPLITS)}",
      f"--output_dir={records_dir}", "--progress=false"])
  if code:
    raise RuntimeError(f"converting the demo data failed (exit code {code})")


def _demo_command(f: flags.FlagValues) -> int:
  """Runs the demo and prints the held-out PQ."""
  del f  # the helpers read _FLAGS, which cli.run has parsed
  logging.set_verbosity(logging.WARNING)
  # TensorFlow's C++ start-up notices would bury the demo's output.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  work_dir = _FLAGS.work_dir
  if _FLAGS.fresh:
    shutil.rmtree(work_dir, ignore_errors=True)
  raw_dir = os.path.join(work_dir, "data")
  records_dir = os.path.join(work_dir, "records")
  model_dir = os.path.join(work_dir, "model")
  started = time.time()

  counts = (("train", _FLAGS.num_train_images), ("val", _FLAGS.num_val_images))
  print(f"[demo] 1/3 drawing {counts[0][1]} training and {counts[1][1]} held-out scenes "
        f"into {raw_dir}", flush=True)
  _generate(raw_dir, counts)
  print(f"[demo] 2/3 converting them to TFRecords in {records_dir}", flush=True)
  _convert(raw_dir, records_dir)
  prepared = time.time()

  from kmax_tf.runtime.lean_import import import_tensorflow_lean  # pylint: disable=g-import-not-at-top
  tf = import_tensorflow_lean()
  import tf_keras  # pylint: disable=g-import-not-at-top
  from kmax_tf.config import loader  # pylint: disable=g-import-not-at-top
  from kmax_tf.runtime.heap_trimmer import HeapTrimmer  # pylint: disable=g-import-not-at-top
  from kmax_tf.training import experiment  # pylint: disable=g-import-not-at-top
  overrides = [
      f"train_dataset_options.file_pattern={os.path.join(records_dir, 'train*.tfrecord')}",
      f"eval_dataset_options.file_pattern={os.path.join(records_dir, 'val*.tfrecord')}",
  ] + list(_FLAGS.config_override)
  config = loader.load_config(_FLAGS.config_file, overrides)
  steps = config.trainer_options.solver_options.training_number_of_steps
  print(f"[demo] 3/3 training kMaX-DeepLab for {steps} steps, then evaluating "
        f"(checkpoints and TensorBoard logs in {model_dir})", flush=True)
  tf_keras.utils.set_random_seed(_FLAGS.seed)
  console = sys.stdout
  latest = tf.train.latest_checkpoint(model_dir) if os.path.isdir(model_dir) else None
  trained = [int(latest.rsplit("-", 1)[1]) if latest else 0]

  def progress(logs):
    trained[0] += config.trainer_options.steps_per_loop
    print(f"[demo]     step {min(trained[0], steps)}/{steps}: loss "
          f"{float(logs['losses/train_total_loss']):.2f}, "
          f"{float(logs.get('throughput/seconds_per_step', 0.0)):.2f} s/step", file=console,
          flush=True)

  # The trainer's per-loop logs (every loss term) go to a file; the console
  # gets one line per loop.
  os.makedirs(model_dir, exist_ok=True)
  with open(os.path.join(model_dir, "train_log.txt"), "a", encoding="utf-8") as log, \
      contextlib.redirect_stdout(log), HeapTrimmer():
    result = experiment.run_experiment(config, model_dir, "train_and_eval", seed=_FLAGS.seed,
                                       train_actions=[progress])
  finished = time.time()
  pq = result.eval_results
  print(f"[demo] data {prepared - started:.0f} s, training + evaluation "
        f"{finished - prepared:.0f} s, total {finished - started:.0f} s")
  print(f"[demo] PQ on the held-out split ({counts[1][1]} images): {100 * pq['All']['pq']:.1f} "
        f"(things {100 * pq['Things']['pq']:.1f}, stuff {100 * pq['Stuff']['pq']:.1f}); "
        f"per class in {os.path.join(model_dir, 'eval', 'panoptic_quality.json')}", flush=True)
  return 0


main = cli.command(_FLAGS, _demo_command, __doc__)
