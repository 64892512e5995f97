r"""Inference latency of kMaX-DeepLab, float32, batch 1, optionally beside DeepLab2.

  python benchmarks/inference.py [--cases r50_641,r50_1281,convnext_tiny_641] \
      [--repeats 5] [--deeplab2_dir /path/to/deeplab2] [--bfloat16] \
      [--output_json benchmarks/results/inference.json]

For each case (`<encoder>_<crop>`: r50, axial_r50, convnext_tiny) it times, after
a warm-up call, `model(images, training=False)` inside one tf.function twice:
"forward" (the mask logits, class logits and normalized features a panoptic user
needs) and "forward + post-processing" (the panoptic, semantic and instance maps
too).

Without `--deeplab2_dir` it prints absolute times only. With it, DeepLab2's model
is built in this process from its own textproto, both models compute with the
same weights (benchmarks/deeplab2_beside.py), the panoptic maps of both are
compared pixel for pixel, and the rounds alternate between the two models (the
order flips every round): DeepLab2's "forward" is its `post_processing=False`
call (which also runs its auxiliary semantic decoder, as DeepLab2 does at
inference), its "forward + post-processing" its default call. Ratios are
kmax_tf / DeepLab2 medians. Every result records the CPU model, its vector
extensions, the oneDNN state and kmax_tf's kernel choices.
"""
import gc
import os
import statistics
import sys
import tempfile
import time

from absl import flags

import deeplab2_beside  # the script's own directory is on sys.path
from kmax_tf import cli

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIGS = {"r50": "configs/coco/kmax_r50.textproto",
            "convnext_tiny": "configs/coco/kmax_convnext_tiny.textproto",
            "axial_r50": "configs/coco/kmax_axial_r50.textproto"}


_FLAGS = flags.FlagValues()
flags.DEFINE_string("cases", "r50_641,r50_1281,convnext_tiny_641",
                    "comma-separated <encoder>_<crop>; encoders: " + ", ".join(_CONFIGS),
                    flag_values=_FLAGS)
flags.DEFINE_integer("repeats", 5, "timed rounds after the warm-up", flag_values=_FLAGS)
flags.DEFINE_string("deeplab2_dir", "",
                    "a DeepLab2 checkout (named deeplab2, protos compiled) to run beside",
                    flag_values=_FLAGS)
flags.DEFINE_bool("bfloat16", False, "kmax_tf in mixed bfloat16 (DeepLab2 stays float32)",
                  flag_values=_FLAGS)
flags.DEFINE_string("output_json", os.path.join(_ROOT, "benchmarks", "results", "inference.json"),
                    "JSON file to write.", flag_values=_FLAGS)


def _check_cases(cases):
  for case in cases.split(","):
    name, _, size = case.rpartition("_")
    if name not in _CONFIGS or not size.isdigit():
      raise cli.UsageError(
          f"--cases: {case!r} is not <encoder>_<crop> with encoder in {sorted(_CONFIGS)}")


def _timed(fn, images):
  start = time.perf_counter()
  result = fn(images)
  arrays = {k: v.numpy() for k, v in result.items()}
  return time.perf_counter() - start, arrays


def _kmax_functions(model):
  from kmax_tf import outputs as keys  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  network = (keys.PIXEL_SPACE_MASK_LOGITS, keys.TRANSFORMER_CLASS_LOGITS,
             keys.PIXEL_SPACE_NORMALIZED_FEATURE)
  return {
      "forward": tf.function(lambda x: model(x, training=False, output_keys=network)),
      "forward_post_processing": tf.function(
          lambda x: model(x, training=False, output_keys=network + keys.POST_PROCESSED_OUTPUTS)),
  }


def _deeplab2_functions(model):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return {
      "forward": tf.function(lambda x: model(x, training=False, post_processing=False)),
      "forward_post_processing": tf.function(lambda x: model(x, training=False)),
  }


def measure(case, args, workdir):
  """Times one case; returns its result dict."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  import kmax_tf  # pylint: disable=g-import-not-at-top
  from kmax_tf import model_builder  # pylint: disable=g-import-not-at-top
  name, _, size = case.rpartition("_")
  size = int(size)
  beside = bool(args.deeplab2_dir)
  config_path = (deeplab2_beside.textproto_path(args.deeplab2_dir, name) if beside
                 else os.path.join(_ROOT, _CONFIGS[name]))
  config = kmax_tf.load_config(config_path, deeplab2_beside.crop_overrides(size))
  previous = model_builder.set_precision("bfloat16" if args.bfloat16 else "float32")
  try:
    kmax_model = kmax_tf.build_model(config)
  finally:
    tf_keras.mixed_precision.set_global_policy(previous)
  models = {"kmax_tf": _kmax_functions(kmax_model)}
  result = {"case": case, "config": os.path.relpath(config_path, _ROOT) if not beside
            else config_path, "bfloat16": args.bfloat16, "repeats": args.repeats}
  if beside:
    dl2_config = deeplab2_beside.load_deeplab2_config(config_path, size, drop_path_keep_prob=1.0)
    dl2_model = deeplab2_beside.build_deeplab2_model(dl2_config, size)
    result["weights"] = deeplab2_beside.share_weights(
        dl2_model, kmax_model, deeplab2_beside.DEEPLAB2_CONFIGS[name][1], workdir)
    models["deeplab2"] = _deeplab2_functions(dl2_model)
  images, result["input"] = deeplab2_beside.photo(size)
  images = tf.constant(images)

  first_call, maps = {}, {}
  for model_name, functions in models.items():
    for kind, fn in functions.items():
      seconds, arrays = _timed(fn, images)
      first_call[f"{model_name}/{kind}"] = seconds
      if kind == "forward_post_processing":
        maps[model_name] = arrays
  result["first_call_s"] = first_call
  times = {f"{m}/{k}": [] for m, functions in models.items() for k in functions}
  for round_index in range(args.repeats):
    order = list(models) if round_index % 2 == 0 else list(reversed(models))
    for kind in ("forward", "forward_post_processing"):
      for model_name in order:
        seconds, _ = _timed(models[model_name][kind], images)
        times[f"{model_name}/{kind}"].append(seconds)
  result["median_s"] = {k: statistics.median(v) for k, v in times.items()}
  result["times_s"] = times
  if beside:
    result["ratio_to_deeplab2"] = {
        kind: result["median_s"][f"kmax_tf/{kind}"] / result["median_s"][f"deeplab2/{kind}"]
        for kind in ("forward", "forward_post_processing")}
    result["maps_differing_pixels"] = {
        key: int(np.sum(maps["kmax_tf"][key] != maps["deeplab2"][key]))
        for key in ("panoptic_pred", "instance_pred", "semantic_pred")}
    result["panoptic_segments"] = int(len(np.unique(maps["deeplab2"]["panoptic_pred"])))
  return result


def _print(result):
  medians = result["median_s"]
  line = [f"{result['case']}:"]
  for kind, label in (("forward", "forward"), ("forward_post_processing", "forward+pp")):
    text = f"{label} {medians[f'kmax_tf/{kind}']:.3f} s"
    if "ratio_to_deeplab2" in result:
      text += (f" (DeepLab2 {medians[f'deeplab2/{kind}']:.3f} s, "
               f"{result['ratio_to_deeplab2'][kind]:.2f}x)")
    line.append(text)
  if "maps_differing_pixels" in result:
    diff = result["maps_differing_pixels"]
    line.append("maps identical" if not any(diff.values()) else f"MAPS DIFFER {diff}")
  print("  ".join(line), flush=True)


def _benchmark(args: flags.FlagValues) -> int:
  _check_cases(args.cases)
  commit = deeplab2_beside.prepare(args.deeplab2_dir) if args.deeplab2_dir else None
  machine = deeplab2_beside.machine_record()
  print(f"machine: {machine['cpu_model']}; {machine['kernel_mode']}; "
        f"{' '.join(machine['vector_extensions'])}; choices: {'; '.join(machine['reasons'])}",
        flush=True)
  results = []
  with tempfile.TemporaryDirectory() as workdir:
    for case in args.cases.split(","):
      result = measure(case, args, workdir)
      _print(result)
      results.append(result)
      gc.collect()
  deeplab2_beside.write_json(args.output_json, {"machine": machine, "deeplab2_commit": commit, "results": results})
  return 0


main = cli.command(_FLAGS, _benchmark, __doc__, input_errors=(FileNotFoundError,))


if __name__ == "__main__":
  sys.exit(main())
