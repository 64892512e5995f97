r"""Training-step speed and memory of kMaX-DeepLab R50, optionally beside DeepLab2.

  python benchmarks/train_step.py [--steps 10] [--crop 257] [--batch 2] \
      [--precision float32] [--deeplab2_dir /path/to/deeplab2] \
      [--output_json benchmarks/results/train_step.json]

The case: the COCO R50 config (128 mask slots, all 30 loss terms with deep
supervision, AdamW with the 0.1x backbone optimizer), 257x257 crops, batch 2,
one fixed batch. The fixed batch is two of the 16 COCO fixture images
(../shared/fixtures/coco_val2017_16) converted by our COCO converter and
preprocessed by the training input pipeline; this parent process makes it and
saves it, the measured child only loads it, so the input pipeline is not part
of the measured process. The step is the trainer's own
(KMaXTrainer.train_step), and the child imports TensorFlow and returns freed
heap pages to the OS as trainer.py does.

kmax_tf alone (default): a fresh child process; "time to first step" runs from
its start (before importing TensorFlow) to the end of the first step, peak RSS
is its ru_maxrss; also process CPU seconds per step and the load average.

With `--deeplab2_dir` (a DeepLab2 checkout, see benchmarks/deeplab2_beside.py)
a second child builds, from DeepLab2's own R50 textproto, DeepLab2's model, loss
and Trainer exactly as its train_lib does (only its input pipeline is replaced
by the same fixed batch) and kmax_tf's trainer with the same weights, then
alternates their steps (order flipped every round) and reports both medians
and the ratio. That child holds both models, so its peak RSS is not a
per-model figure; the kmax_tf-alone child still gives kmax_tf's memory.
Every result records the CPU model, its vector extensions, the oneDNN state and
kmax_tf's kernel choices.
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

_START = time.time()

from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

from kmax_tf import cli  # pylint: disable=g-import-not-at-top,wrong-import-position

import deeplab2_beside  # the script's own directory is on sys.path

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FIXTURE = os.path.join(os.path.dirname(_ROOT), "shared", "fixtures", "coco_val2017_16")
_CONFIG = os.path.join(_ROOT, "configs", "coco", "kmax_r50.textproto")


_FLAGS = flags.FlagValues()
flags.DEFINE_integer("steps", 10, "timed steps after the first", flag_values=_FLAGS)
flags.DEFINE_integer("crop", 257, "square crop side", flag_values=_FLAGS)
flags.DEFINE_integer("batch", 2, "batch size", flag_values=_FLAGS)
flags.DEFINE_enum("precision", "float32", ("float32", "bfloat16", "float16"),
                  "kmax_tf's compute precision (mixed for bfloat16 / float16)",
                  flag_values=_FLAGS)
flags.DEFINE_bool("gradient_recomputation", False,
                  "recompute pixel encoder / decoder activations in the backward pass",
                  flag_values=_FLAGS)
flags.DEFINE_string("records", os.path.join(tempfile.gettempdir(), "kmax_tf_bench_coco16"),
                    "folder of the converted COCO fixture records and the saved fixed batch",
                    flag_values=_FLAGS)
flags.DEFINE_string("deeplab2_dir", "",
                    "a DeepLab2 checkout (named deeplab2, protos compiled) to run beside",
                    flag_values=_FLAGS)
flags.DEFINE_string("output_json", "", "JSON file to write ('': none)", flag_values=_FLAGS)
# Set by the parent process on the command lines of its children.
flags.DEFINE_enum("child", "", ("", "kmax_tf", "pair"),
                  "internal: the measured child process to run", flag_values=_FLAGS)
flags.DEFINE_string("batch_file", "", "internal: the fixed batch (.npz) for a child",
                    flag_values=_FLAGS)


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


def _kmax_step(config, batch, args):
  """kmax_tf's trainer on the fixed batch; returns (model, trainer, step, iterator)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from kmax_tf import model_builder  # pylint: disable=g-import-not-at-top
  from kmax_tf.data import input_pipeline  # pylint: disable=g-import-not-at-top
  from kmax_tf.training import experiment  # pylint: disable=g-import-not-at-top
  from kmax_tf.training import gradient_recomputation  # pylint: disable=g-import-not-at-top
  from kmax_tf.training import optimizer_builder  # pylint: disable=g-import-not-at-top
  from kmax_tf.training.kmax_trainer import KMaXTrainer  # pylint: disable=g-import-not-at-top
  options = config.train_dataset_options
  descriptor = input_pipeline.resolve_descriptor(
      options.dataset, input_pipeline.list_record_files(list(options.file_pattern)))
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
  trainer.train_loop_begin()
  return model, trainer, tf.function(trainer.train_step), iter(trainer.train_dataset)


def _deeplab2_step(config, batch):
  """DeepLab2's model, loss and Trainer as its train_lib builds them, on the fixed batch."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from deeplab2.data import dataset  # pylint: disable=g-import-not-at-top
  from deeplab2.model.loss import loss_builder  # pylint: disable=g-import-not-at-top
  from deeplab2.trainer import runner_utils  # pylint: disable=g-import-not-at-top
  from deeplab2.trainer import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  info = dataset.MAP_NAME_TO_DATASET_INFO[config.train_dataset_options.dataset]
  model = deeplab2_beside.build_deeplab2_model(config, config.train_dataset_options.crop_size[0])
  loss = loss_builder.DeepLabFamilyLoss(
      loss_options=config.trainer_options.loss_options, deeplab_options=config.model_options,
      num_classes=info.num_classes, ignore_label=info.ignore_label,
      ignore_depth=info.ignore_depth, thing_class_ids=info.class_has_instances_list,
      auxiliary_output_number=model.auxiliary_output_number)
  inputs = dict(batch[1], image=batch[0])
  # The one substitution: DeepLab2's Trainer reads the same fixed batch instead
  # of building its input pipeline from the config's file pattern.
  original = runner_utils.create_dataset
  runner_utils.create_dataset = lambda *a, **k: tf.data.Dataset.from_tensors(inputs).repeat()
  try:
    trainer = trainer_lib.Trainer(config, model, loss, tf.Variable(0, dtype=tf.int64))
  finally:
    runner_utils.create_dataset = original
  trainer.train_loop_begin()
  return model, trainer, tf.function(trainer.train_step), iter(trainer.train_dataset)


def _load_batch(tf, batch_file):
  import numpy as np  # pylint: disable=g-import-not-at-top
  with np.load(batch_file) as data:
    targets = {k: tf.constant(data[k]) for k in data.files}
  return targets.pop("image"), targets


def _child(args):
  """The measured kmax_tf-alone run; prints one JSON line."""
  # As trainer.py imports TensorFlow.
  from kmax_tf.runtime.lean_import import import_tensorflow_lean  # pylint: disable=g-import-not-at-top
  tf = import_tensorflow_lean()
  import tf_keras  # pylint: disable=g-import-not-at-top
  from kmax_tf.config import loader  # pylint: disable=g-import-not-at-top
  from kmax_tf.runtime.heap_trimmer import HeapTrimmer  # pylint: disable=g-import-not-at-top

  config = loader.load_config(_CONFIG, _overrides(args))
  tf_keras.utils.set_random_seed(0)
  if args.precision != "float32":
    tf_keras.mixed_precision.set_global_policy(f"mixed_{args.precision}")
  batch = _load_batch(tf, args.batch_file)
  # As the trainer's process set-up does around its training loop.
  trimmer = HeapTrimmer().start()
  _, trainer, step, iterator = _kmax_step(config, batch, args)
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
      "machine": deeplab2_beside.machine_record(),
      "load_average_1min": os.getloadavg()[0]}))


def _pair_child(args):
  """DeepLab2's and kmax_tf's steps alternated in one process; prints one JSON line."""
  deeplab2_beside.prepare(args.deeplab2_dir)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  import kmax_tf  # pylint: disable=g-import-not-at-top

  path = deeplab2_beside.textproto_path(args.deeplab2_dir, "r50")
  overrides = deeplab2_beside.crop_overrides(args.crop) + [
      f"train_dataset_options.file_pattern={args.records}/val*.tfrecord",
      f"train_dataset_options.batch_size={args.batch}"]
  config = kmax_tf.load_config(path, overrides)
  dl2_config = deeplab2_beside.load_deeplab2_config(path, args.crop)
  dl2_config.train_dataset_options.batch_size = args.batch
  tf_keras.utils.set_random_seed(0)
  batch = _load_batch(tf, args.batch_file)
  steps, first = {}, {}
  dl2_model, dl2_trainer, steps["deeplab2"], dl2_iterator = _deeplab2_step(dl2_config, batch)
  kmax_model, kmax_trainer, steps["kmax_tf"], kmax_iterator = _kmax_step(config, batch, args)
  import tempfile  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as workdir:
    weights = deeplab2_beside.share_weights(dl2_model, kmax_model, "coco_r50", workdir)
  iterators = {"deeplab2": dl2_iterator, "kmax_tf": kmax_iterator}
  for name in ("deeplab2", "kmax_tf"):
    t0 = time.perf_counter()
    steps[name](iterators[name])
    first[name] = time.perf_counter() - t0
  times = {"deeplab2": [], "kmax_tf": []}
  for round_index in range(args.steps):
    order = ("kmax_tf", "deeplab2") if round_index % 2 == 0 else ("deeplab2", "kmax_tf")
    for name in order:
      t0 = time.perf_counter()
      steps[name](iterators[name])
      times[name].append(time.perf_counter() - t0)
  losses = {
      "kmax_tf": {k: float(v) for k, v in kmax_trainer.train_loop_end().items()
                  if k.endswith("total_loss")},
      "deeplab2": {k: float(v) for k, v in dl2_trainer.train_loop_end().items()
                   if k.endswith("total_loss")}}
  medians = {k: statistics.median(v) for k, v in times.items()}
  print(json.dumps({
      "seconds_per_step": medians, "times_s": times, "first_step_s": first,
      "ratio_to_deeplab2": medians["kmax_tf"] / medians["deeplab2"], "losses": losses,
      "weights": weights, "steps": args.steps, "machine": deeplab2_beside.machine_record()}))


def _run_child(args, mode, batch_file):
  command = [sys.executable, os.path.abspath(__file__), f"--child={mode}",
             f"--steps={args.steps}", f"--crop={args.crop}", f"--batch={args.batch}",
             f"--precision={args.precision}", f"--records={args.records}",
             f"--batch_file={batch_file}", f"--deeplab2_dir={args.deeplab2_dir}"]
  if args.gradient_recomputation:
    command.append("--gradient_recomputation")
  child = subprocess.run(command, capture_output=True, text=True, check=False)
  if child.returncode:
    sys.stderr.write(child.stderr[-5000:])
    raise SystemExit(f"the {mode} child failed with exit code {child.returncode}")
  return json.loads(child.stdout.strip().splitlines()[-1])


def _benchmark(args: flags.FlagValues) -> int:
  if args.child == "kmax_tf":
    _child(args)
    return 0
  if args.child == "pair":
    _pair_child(args)
    return 0
  if args.deeplab2_dir and args.precision != "float32":
    raise cli.UsageError("--deeplab2_dir compares float32 steps; DeepLab2 has no --precision.")
  _convert(args.records)
  batch_file = os.path.join(args.records, f"batch_{args.crop}_{args.batch}.npz")
  if not os.path.exists(batch_file):
    _save_batch(args, batch_file)
  load_before = os.getloadavg()
  result = _run_child(args, "kmax_tf", batch_file)
  result.update(case=(f"r50_{args.crop}_batch{args.batch}_{args.precision}"
                      + ("_recompute" if args.gradient_recomputation else "")),
                load_average_before=load_before[0], cpu_count=os.cpu_count())
  if args.deeplab2_dir:
    result["beside_deeplab2"] = _run_child(args, "pair", batch_file)
  print(json.dumps(result, indent=2))
  if args.output_json:
    deeplab2_beside.write_json(args.output_json, result)
  return 0


main = cli.command(_FLAGS, _benchmark, __doc__)


if __name__ == "__main__":
  sys.exit(main())
