r"""Training-step speed and memory of kMaX-DeepLab R50, compared with DeepLab2.

  python benchmarks/train_step.py [--steps 10] [--crop 257] [--batch 2] \
      [--precision float32] [--output_json benchmarks/results/train_step.json]

kMaX-DeepLab: Yu et al., "k-means Mask Transformer", ECCV 2022.

The case is DeepLab2's measurement on this 2-core machine
(../shared/docs/deeplab2_measured.md): COCO R50 config (128 mask slots, all 30
loss terms with deep supervision, AdamW with the 0.1x backbone optimizer),
257x257 crops, batch 2, a fixed batch, in a clean process: 5.63 s/step median,
6.4 GB peak RSS, 100 s to the first step. The fixed batch is two of the 16
COCO fixture images (../shared/fixtures/coco_val2017_16) converted by our COCO
converter and preprocessed by the training input pipeline; this parent process
makes it and saves it, the measured child only loads it (as DeepLab2's
measurement, the input pipeline is not part of the measured process). The step
is the trainer's own (KMaXTrainer.train_step), and the child process imports
TensorFlow and returns freed heap pages to the OS as trainer.py and
run_experiment do (lean_tensorflow_import, HeapTrimmer).

The measured process is a fresh child process: "time to first step" runs from
its start (before importing TensorFlow) to the end of the first step, and peak
RSS is its ru_maxrss. Also reported: process CPU seconds per step, which on a
shared machine is a steadier figure than wall time, and the load average.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

_START = time.time()
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FIXTURE = os.path.join(os.path.dirname(_ROOT), "shared", "fixtures", "coco_val2017_16")
_CONFIG = os.path.join(_ROOT, "configs", "coco", "kmax_r50.textproto")
DEEPLAB2 = {"seconds_per_step": 5.63, "peak_rss_gb": 6.4, "first_step_s": 100.0}
TARGET_RATIO = {"seconds_per_step": 0.7, "peak_rss_gb": 0.6, "first_step_s": 0.5}


def _parse(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=10, help="timed steps after the first")
  parser.add_argument("--crop", type=int, default=257)
  parser.add_argument("--batch", type=int, default=2)
  parser.add_argument("--precision", default="float32",
                      choices=("float32", "bfloat16", "float16"))
  parser.add_argument("--gradient_recomputation", action="store_true",
                      help="recompute pixel encoder / decoder activations in the backward pass")
  parser.add_argument("--records", default=os.path.join(tempfile.gettempdir(),
                                                        "kmax_tf_bench_coco16"))
  parser.add_argument("--output_json", default="")
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--batch_file", default="", help=argparse.SUPPRESS)
  return parser.parse_args(argv)


def _convert(records):
  if os.path.exists(os.path.join(records, "dataset_descriptor.json")):
    return
  subprocess.run([sys.executable, "-m", "kmax_tf.data.build_panoptic_tfrecords",
                  "--format=coco", f"--root={_FIXTURE}", "--splits=val",
                  f"--output_dir={records}", "--progress=false"], check=True)


def _overrides(args):
  crop = args.crop
  return [f"train_dataset_options.file_pattern={args.records}/val*.tfrecord",
          f"train_dataset_options.crop_size={crop},{crop}",
          f"train_dataset_options.min_resize_value={crop}",
          f"train_dataset_options.max_resize_value={crop}",
          f"eval_dataset_options.crop_size={crop},{crop}",
          f"train_dataset_options.batch_size={args.batch}"]


def _save_batch(args, path):
  """The fixed batch: the training pipeline's first batch (seed 0), as .npz."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from kmax_tf.config import loader  # pylint: disable=g-import-not-at-top
  from kmax_tf.data import input_pipeline  # pylint: disable=g-import-not-at-top
  options = loader.load_config(_CONFIG, _overrides(args)).train_dataset_options
  images, targets = next(iter(input_pipeline.make_dataset(options, is_training=True, seed=0)))
  np.savez(path, image=images.numpy(), **{k: v.numpy() for k, v in targets.items()})


def _child(args):
  """The measured run; prints one JSON line."""
  # As trainer.py imports TensorFlow.
  from kmax_tf.lean_tensorflow_import import import_tensorflow_lean  # pylint: disable=g-import-not-at-top
  tf = import_tensorflow_lean()
  import tf_keras  # pylint: disable=g-import-not-at-top
  from kmax_tf import model_builder  # pylint: disable=g-import-not-at-top
  from kmax_tf.config import loader  # pylint: disable=g-import-not-at-top
  from kmax_tf.data import input_pipeline  # pylint: disable=g-import-not-at-top
  from kmax_tf.training import experiment  # pylint: disable=g-import-not-at-top
  from kmax_tf.training import gradient_recomputation  # pylint: disable=g-import-not-at-top
  from kmax_tf.training import optimizer_builder  # pylint: disable=g-import-not-at-top
  from kmax_tf.training.heap_trimmer import HeapTrimmer  # pylint: disable=g-import-not-at-top
  from kmax_tf.training.kmax_trainer import KMaXTrainer  # pylint: disable=g-import-not-at-top

  import numpy as np  # pylint: disable=g-import-not-at-top
  config = loader.load_config(_CONFIG, _overrides(args))
  tf_keras.utils.set_random_seed(0)
  if args.precision != "float32":
    tf_keras.mixed_precision.set_global_policy(f"mixed_{args.precision}")
  options = config.train_dataset_options
  descriptor = input_pipeline.resolve_descriptor(
      options.dataset, input_pipeline.list_record_files(list(options.file_pattern)))
  with np.load(args.batch_file) as data:
    targets = {k: tf.constant(data[k]) for k in data.files}
  batch = (targets.pop("image"), targets)
  strategy = tf.distribute.get_strategy()
  model = model_builder.build_model(config, for_training=True)
  if args.gradient_recomputation:
    for part in (model.pixel_encoder, model.pixel_decoder):
      gradient_recomputation.enable(part)
  groups = optimizer_builder.group_variables(model)
  optimizers = optimizer_builder.build_optimizers(config.trainer_options.solver_options, groups,
                                                  loss_scale=args.precision == "float16")
  loss = experiment.build_loss(config, descriptor, sum(model.transformer_decoder.num_layers))
  trainer = KMaXTrainer(
      model, loss, optimizers, groups, tf.Variable(0, dtype=tf.int64),
      lambda seed, first: strategy.experimental_distribute_dataset(
          tf.data.Dataset.from_tensors(batch).repeat()),
      seed=0, global_batch_size=args.batch, use_tf_while_loop=False)
  # As run_experiment does around its training loop.
  trimmer = HeapTrimmer().start()
  trainer.train_loop_begin()
  iterator = iter(trainer.train_dataset)
  step = tf.function(trainer.train_step)
  step(iterator)
  first_step = time.time() - _START
  first_step_cpu = time.process_time()
  times, cpu = [], []
  for _ in range(args.steps):
    t0, c0 = time.perf_counter(), time.process_time()
    step(iterator)
    times.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
  losses = {k: float(v) for k, v in trainer.train_loop_end().items() if k.endswith("total_loss")}
  trimmer.stop()
  print(json.dumps({
      "seconds_per_step": statistics.median(times), "min_seconds_per_step": min(times),
      "cpu_seconds_per_step": statistics.median(cpu),
      "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
      "first_step_s": first_step, "first_step_cpu_s": first_step_cpu,
      "steps": args.steps, "losses": losses,
      "load_average_1min": os.getloadavg()[0]}))


def main(argv=None):
  args = _parse(argv)
  if args.child:
    _child(args)
    return 0
  _convert(args.records)
  batch_file = os.path.join(args.records, f"batch_{args.crop}_{args.batch}.npz")
  if not os.path.exists(batch_file):
    _save_batch(args, batch_file)
  load_before = os.getloadavg()
  child = subprocess.run([sys.executable, os.path.abspath(__file__), "--child",
                          f"--steps={args.steps}", f"--crop={args.crop}",
                          f"--batch={args.batch}", f"--precision={args.precision}",
                          f"--records={args.records}", f"--batch_file={batch_file}"]
                         + (["--gradient_recomputation"] if args.gradient_recomputation else []),
                         capture_output=True, text=True, check=False)
  if child.returncode:
    sys.stderr.write(child.stderr[-5000:])
    return child.returncode
  result = json.loads(child.stdout.strip().splitlines()[-1])
  result.update(case=(f"r50_{args.crop}_batch{args.batch}_{args.precision}"
                      + ("_recompute" if args.gradient_recomputation else "")),
                load_average_before=load_before[0], cpu_count=os.cpu_count(),
                deeplab2=DEEPLAB2,
                ratio_to_deeplab2={k: result[k] / v for k, v in DEEPLAB2.items()},
                target_ratio=TARGET_RATIO)
  print(json.dumps(result, indent=2))
  if args.output_json:
    os.makedirs(os.path.dirname(os.path.abspath(args.output_json)), exist_ok=True)
    with open(args.output_json, "w", encoding="utf-8") as f:
      json.dump(result, f, indent=2)
  return 0


if __name__ == "__main__":
  sys.exit(main())
