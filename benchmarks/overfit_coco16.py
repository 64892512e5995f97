r"""Overfits kMaX-DeepLab R50 on the 16 real COCO fixture images: loss and PQ curve.

  python benchmarks/overfit_coco16.py [--steps 300] [--crop 129] [--batch 4] \
      [--eval_every 100] [--output_json benchmarks/results/overfit_coco16.json]

kMaX-DeepLab: Yu et al., "k-means Mask Transformer", ECCV 2022.

A learning check on real data, sized for the project's 2-core CPU machine
(about 15 minutes): the 16 COCO val2017 images of
../shared/fixtures/coco_val2017_16 are converted with the project's COCO
converter (`python -m kmax_tf.data.build_panoptic_tfrecords --format=coco`)
into a temporary folder, then the COCO R50 experiment
(configs/coco/kmax_r50.textproto: ResNet-50, 128 mask slots, all loss terms
with deep supervision, AdamW) is trained on them with trainer.py's code path
(kmax_tf.training.experiment, train_and_eval mode) and evaluated (PQ, on the
same 16 images) every --eval_every steps.

Reduced-size variant, changed from the COCO recipe by config overrides (all
printed and stored in the JSON):
  - crop --crop (default 129x129) instead of 1281x1281, global batch --batch;
  - random weights (no ImageNet download), so the learning rate is
    --learning_rate with a 50-step warmup for all variables (no 0.1x backbone
    multiplier) and the decoder's drop path is off;
  - no scale jitter, AutoAugment or copy-paste (horizontal flips stay): the
    goal is to fit these images;
  - the evaluator's area limits (400 / 6400 pixels at 1281) scaled to the crop.
"""
import contextlib
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from absl import flags

from kmax_tf import cli

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FIXTURE = os.path.join(os.path.dirname(_ROOT), "shared", "fixtures", "coco_val2017_16")
_CONFIG = os.path.join(_ROOT, "configs", "coco", "kmax_r50.textproto")
# Area limits of the COCO config, which are meant for 1281x1281 crops.
_COCO_CROP, _THING_AREA, _STUFF_AREA = 1281, 400, 6400
_REPORTED_TERMS = ("total_loss", "pq_style_loss_class_term", "pq_style_loss_mask_dice_term",
                   "mask_id_cross_entropy_loss", "instance_discrimination_loss", "semantic_loss")


_FLAGS = flags.FlagValues()
flags.DEFINE_integer("steps", 300, "training steps", flag_values=_FLAGS)
flags.DEFINE_integer("crop", 129, "square crop side (32 n + 1)", flag_values=_FLAGS)
flags.DEFINE_integer("batch", 4, "global batch size", flag_values=_FLAGS)
flags.DEFINE_float("learning_rate", 1e-3, "base learning rate (50-step warmup)",
                   flag_values=_FLAGS)
flags.DEFINE_integer("eval_every", 100, "steps between PQ evaluations", flag_values=_FLAGS)
flags.DEFINE_integer("log_every", 10, "steps per loss point", flag_values=_FLAGS)
flags.DEFINE_string("work_dir", "",
                    "records and checkpoints (default: a temporary folder, removed)",
                    flag_values=_FLAGS)
flags.DEFINE_string("output_json", "", "JSON file to write ('': none).", flag_values=_FLAGS)


def _overrides(args, records):
  scale = (args.crop / _COCO_CROP) ** 2
  crop = f"{args.crop},{args.crop}"
  pattern = os.path.join(records, "val*.tfrecord")
  return [
      f"train_dataset_options.file_pattern={pattern}",
      f"eval_dataset_options.file_pattern={pattern}",
      f"train_dataset_options.crop_size={crop}",
      f"train_dataset_options.min_resize_value={args.crop}",
      f"train_dataset_options.max_resize_value={args.crop}",
      f"train_dataset_options.batch_size={args.batch}",
      "train_dataset_options.augmentations={min_scale_factor: 1.0 max_scale_factor: 1.0}",
      f"eval_dataset_options.crop_size={crop}",
      f"eval_dataset_options.min_resize_value={args.crop}",
      f"eval_dataset_options.max_resize_value={args.crop}",
      "model_options.kmax_deeplab.transformer_decoder_drop_path_keep_prob=1.0",
      f"trainer_options.solver_options.base_learning_rate={args.learning_rate}",
      "trainer_options.solver_options.warmup_steps=50",
      "trainer_options.solver_options.backbone_learning_rate_multiplier=1.0",
      f"trainer_options.solver_options.training_number_of_steps={args.steps}",
      f"trainer_options.steps_per_loop={args.log_every}",
      f"trainer_options.save_summaries_steps={args.log_every}",
      f"trainer_options.save_checkpoints_steps={args.eval_every}",
      "trainer_options.num_checkpoints_to_keep=1",
      f"evaluator_options.eval_interval={args.eval_every}",
      f"evaluator_options.thing_area_limit={max(1, round(_THING_AREA * scale))}",
      f"evaluator_options.stuff_area_limit={max(1, round(_STUFF_AREA * scale))}",
  ]


def _convert(records):
  subprocess.run([sys.executable, "-m", "kmax_tf.data.build_panoptic_tfrecords",
                  "--format=coco", f"--root={_FIXTURE}", "--splits=val",
                  f"--output_dir={records}", "--progress=false"], check=True)


def _pq_curve(eval_dir):
  curve = []
  for path in glob.glob(os.path.join(eval_dir, "panoptic_quality-*.json")):
    with open(path, encoding="utf-8") as f:
      result = json.load(f)
    curve.append({"step": result["step"], "pq": 100 * result["All"]["pq"],
                  "sq": 100 * result["All"]["sq"], "rq": 100 * result["All"]["rq"],
                  "pq_things": 100 * result["Things"]["pq"],
                  "pq_stuff": 100 * result["Stuff"]["pq"]})
  return sorted(curve, key=lambda row: row["step"])


def _benchmark(args: flags.FlagValues) -> int:
  started = time.time()
  work_dir = args.work_dir or tempfile.mkdtemp(prefix="kmax_tf_overfit_coco16_")
  records = os.path.join(work_dir, "records")
  model_dir = os.path.join(work_dir, "model")
  shutil.rmtree(model_dir, ignore_errors=True)
  try:
    if not os.path.exists(os.path.join(records, "dataset_descriptor.json")):
      _convert(records)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tf_keras  # pylint: disable=g-import-not-at-top
    from kmax_tf.config import loader  # pylint: disable=g-import-not-at-top
    from kmax_tf.training import experiment  # pylint: disable=g-import-not-at-top
    overrides = _overrides(args, records)
    config = loader.load_config(_CONFIG, overrides)
    tf_keras.utils.set_random_seed(0)
    loss_curve = []
    step = [0]

    def record(logs, console):
      step[0] += args.log_every
      point = {"step": step[0], "elapsed_s": time.time() - started,
               "seconds_per_step": float(logs.get("throughput/seconds_per_step", 0.0))}
      for term in _REPORTED_TERMS:
        key = f"losses/train_{term}"
        if key in logs:
          point[term] = float(logs[key])
      loss_curve.append(point)
      print(f"step {point['step']:4d}  total loss {point['total_loss']:7.3f}  "
            f"{point['seconds_per_step']:.2f} s/step  {point['elapsed_s']:.0f} s", file=console,
            flush=True)

    # The trainer's per-loop logs go to a file; the console gets one line per loop.
    console = sys.stdout
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "train_log.txt"), "w", encoding="utf-8") as log, \
        contextlib.redirect_stdout(log):
      experiment.run_experiment(config, model_dir, "train_and_eval", seed=0,
                                train_actions=[lambda logs: record(logs, console)])
    pq_curve = _pq_curve(os.path.join(model_dir, "eval"))
  finally:
    if not args.work_dir:
      shutil.rmtree(work_dir, ignore_errors=True)
  result = {
      "case": f"r50_coco16_crop{args.crop}_batch{args.batch}_{args.steps}steps",
      "config_file": os.path.relpath(_CONFIG, _ROOT), "config_overrides": overrides,
      "wall_time_s": time.time() - started, "load_average": list(os.getloadavg()),
      "loss_curve": loss_curve, "pq_curve": pq_curve}
  print("PQ on the 16 training images (%):")
  for row in pq_curve:
    print(f"  step {row['step']:4d}: PQ {row['pq']:5.1f} (SQ {row['sq']:.1f}, RQ {row['rq']:.1f};"
          f" things {row['pq_things']:.1f}, stuff {row['pq_stuff']:.1f})")
  print(f"wall time {result['wall_time_s']:.0f} s, load average {result['load_average'][0]:.1f}")
  if args.output_json:
    os.makedirs(os.path.dirname(os.path.abspath(args.output_json)), exist_ok=True)
    with open(args.output_json, "w", encoding="utf-8") as f:
      json.dump(result, f, indent=2)
  return 0


main = cli.command(_FLAGS, _benchmark, __doc__)


if __name__ == "__main__":
  sys.exit(main())
