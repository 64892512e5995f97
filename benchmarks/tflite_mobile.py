r"""Mobile benchmark: kMaX-DeepLab with tiny-MOAT and R50 encoders in TFLite.

  python benchmarks/tflite_mobile.py [--encoders=tiny_moat0,tiny_moat1,tiny_moat2,tiny_moat3,r50] \
      [--sizes=641,385] [--quantizations=none,float16,dynamic_int8] [--rounds=5] \
      [--agreement=NAME:CONFIG:CHECKPOINT:DESCRIPTOR:IMAGE_DIR ...] \
      [--workdir=/tmp/kmax_tflite_mobile] [--output_json=benchmarks/results/tflite_mobile.json]

MOAT: Yang et al., ICLR 2023; kMaX-DeepLab: Yu et al., ECCV 2022.

Size and latency: for every encoder and square input size, the COCO config
(configs/coco/kmax_<encoder>.textproto; R50: kmax_r50) with its eval crop set
to that size is built with Keras' initial weights (seed 0), saved, exported with
export/export_model.py at that fixed input size (post-processing included) and
converted with export/convert_tflite.py per quantization. All files are then
timed in the stock ai_edge_litert interpreter (2 threads, XNNPACK, the default
delegate) on the same COCO photo resized to the input size: one warm-up run
each, then `--rounds` rounds, each running every file once in turn (so all
files see the same machine load); the median per file is reported.

Per-part profile (--profile=ENCODER_SIZE, e.g. tiny_moat0_641): the same
model's network cut after the pixel encoder, after the pixel decoder, and
after the transformer decoder and heads (raw outputs, no post-processing) is
converted per quantization from Keras concrete functions and timed together
with the full files; the differences between consecutive cuts give each
part's share of the LiteRT time (post-processing = full file - heads cut).

Agreement: a random network's panoptic maps are near ties everywhere (see
BENCHMARKS.md, TFLite), so agreement is measured on trained checkpoints given
with --agreement: NAME, experiment config, checkpoint, dataset_descriptor.json,
and a directory of images. Each is exported at the config's eval crop,
converted per quantization, and the panoptic maps of every image are compared
with the SavedModel's (fraction of equal pixels; also the worst image).
"""
import json
import os
import statistics
import subprocess
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from absl import flags  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position
import tensorflow as tf  # pylint: disable=wrong-import-position
import tf_keras  # pylint: disable=wrong-import-position

import kmax_tf  # pylint: disable=wrong-import-position
from kmax_tf import cli  # pylint: disable=wrong-import-position
from kmax_tf.checkpoints import checkpoint_io  # pylint: disable=wrong-import-position
from kmax_tf.export import tflite_conversion  # pylint: disable=wrong-import-position
from kmax_tf.testing import deeplab2_fixtures  # pylint: disable=wrong-import-position

import deeplab2_beside  # pylint: disable=wrong-import-position

CONFIGS = {"r50": "kmax_r50", **{f"tiny_moat{i}": f"kmax_tiny_moat{i}" for i in range(4)},
           **{f"moat{i}": f"kmax_moat{i}" for i in range(5)}}
PHOTO = os.path.join("coco_val2017_16", "val2017", "000000397133.jpg")
TARGET_INT8_MB = 30
TARGET_S = 0.5


def _run(cmd):
  start = time.perf_counter()
  result = subprocess.run([sys.executable] + cmd, capture_output=True, text=True, check=False)
  if result.returncode:
    raise RuntimeError(f"{' '.join(cmd[:2])} failed:\n{result.stderr[-3000:]}")
  return time.perf_counter() - start


def _export(config_file, checkpoint, output_dir, size, overrides=(), descriptor=None):
  cmd = [os.path.join(_ROOT, "export", "export_model.py"), f"--config_file={config_file}",
         f"--checkpoint={checkpoint}", f"--output_dir={output_dir}",
         f"--input_size={size[0]}x{size[1]}"]
  cmd += [f"--config_override={o}" for o in overrides]
  if descriptor:
    cmd.append(f"--dataset_descriptor={descriptor}")
  if not os.path.exists(os.path.join(output_dir, "saved_model.pb")):
    _run(cmd)


def _convert(saved_model, path, quantization):
  if os.path.exists(path):
    return None
  return _run([os.path.join(_ROOT, "export", "convert_tflite.py"), f"--saved_model={saved_model}",
               f"--output={path}", f"--quantization={quantization}"])


def _crop_overrides(size):
  return [f"{split}.{field}={value}"
          for split in ("eval_dataset_options", "train_dataset_options")
          for field, value in (("crop_size", f"{size},{size}"), ("min_resize_value", size),
                               ("max_resize_value", size))]


def build_files(encoders, sizes, quantizations, workdir):
  cases = []
  for encoder in encoders:
    config_file = os.path.join(_ROOT, "configs", "coco", CONFIGS[encoder] + ".textproto")
    for size in sizes:
      name = f"{encoder}_{size}"
      base = os.path.join(workdir, name)
      checkpoint = os.path.join(base, "init", "ckpt")
      if not os.path.exists(checkpoint + ".index"):
        tf_keras.utils.set_random_seed(0)
        model = kmax_tf.build_model(kmax_tf.load_config(config_file, _crop_overrides(size)))
        params = int(sum(np.prod(v.shape) for v in model.variables))
        checkpoint_io.save_model_checkpoint(model, checkpoint)
        with open(os.path.join(base, "params.json"), "w") as f:
          json.dump({"params": params}, f)
        del model
        tf_keras.backend.clear_session()
      saved_model = os.path.join(base, "saved_model")
      _export(config_file, checkpoint, saved_model, [size, size], _crop_overrides(size))
      with open(os.path.join(base, "params.json")) as f:
        params = json.load(f)["params"]
      for quantization in quantizations:
        path = os.path.join(base, f"{quantization}.tflite")
        seconds = _convert(saved_model, path, quantization)
        cases.append(dict(encoder=encoder, size=size, quantization=quantization, path=path,
                          params=params, size_mb=os.path.getsize(path) / 1e6,
                          conversion_s=seconds))
        print(f"{name} {quantization}: {cases[-1]['size_mb']:.1f} MB", flush=True)
  return cases


def _photo(size):
  path = os.path.join(deeplab2_fixtures.fixtures_dir(), PHOTO)
  image = tf.io.decode_image(tf.io.read_file(path), channels=3)
  return tf.cast(tf.image.resize(image, [size, size]), tf.uint8).numpy()[None]


def time_files(cases, rounds):
  interpreters = [tflite_conversion.interpreter(c["path"], num_threads=2) for c in cases]
  images = {c["size"]: _photo(c["size"]) for c in cases}
  for interp, case in zip(interpreters, cases):
    _run_any(interp, images[case["size"]])  # warm-up
  times = [[] for _ in cases]
  for _ in range(rounds):
    for i, (interp, case) in enumerate(zip(interpreters, cases)):
      start = time.perf_counter()
      _run_any(interp, images[case["size"]])
      times[i].append(time.perf_counter() - start)
  for case, t in zip(cases, times):
    case["latency_s"] = statistics.median(t)
    case["latency_all_s"] = t


def profile_files(spec, parts, quantizations, workdir):
  """Cumulative cuts of the network as TFLite files (see the module docstring).

  Converting from Keras concrete functions peaked at ~15 GB RSS for the pixel
  decoder cut of tiny-MOAT-0 at 641; `parts` limits which cuts are made.
  """
  encoder, size = spec.rsplit("_", 1)
  size = int(size)
  config_file = os.path.join(_ROOT, "configs", "coco", CONFIGS[encoder] + ".textproto")
  base = os.path.join(workdir, f"{encoder}_{size}")
  built = []

  def model_():
    if not built:
      built.append(kmax_tf.build_model(kmax_tf.load_config(config_file, _crop_overrides(size))))
      checkpoint_io.load_checkpoint(built[0], os.path.join(base, "init", "ckpt"))
    return built[0]

  spec_in = tf.TensorSpec([1, size, size, 3], tf.float32)

  def cut(part):
    model = model_()

    def forward(images):
      endpoints = model.pixel_encoder(images / 127.5 - 1.0, training=False)
      if part == "encoder":
        return {k: v for k, v in endpoints.items() if k.startswith("stage")}
      endpoints = model.pixel_decoder(endpoints, training=False)
      if part == "pixel_decoder":
        return {k: v for k, v in endpoints.items() if k.startswith("decoder_")}
      endpoints = model.transformer_decoder(endpoints, training=False)
      return dict(model.mask_class_head(endpoints, training=False))
    return tf.function(forward, input_signature=[spec_in]).get_concrete_function()

  cases = []
  for part in parts:
    for quantization in quantizations:
      path = os.path.join(base, f"cut_{part}_{quantization}.tflite")
      if not os.path.exists(path):
        converter = tf.lite.TFLiteConverter.from_concrete_functions([cut(part)], model_())
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization == "float16":
          converter.optimizations = [tf.lite.Optimize.DEFAULT]
          converter.target_spec.supported_types = [tf.float16]
        elif quantization == "dynamic_int8":
          converter.optimizations = [tf.lite.Optimize.DEFAULT]
        with open(path + ".tmp", "wb") as f:
          f.write(converter.convert())
        os.replace(path + ".tmp", path)
      cases.append(dict(encoder=encoder, size=size, quantization=quantization, path=path,
                        cut=part, size_mb=os.path.getsize(path) / 1e6))
  return cases


def random_weight_agreement(cases):
  """Panoptic pixels of each full file equal to its SavedModel's, on the timing photo.

  With Keras' initial weights: near ties everywhere, so a lower bound only."""
  by_model = {}
  for case in cases:
    if "cut" not in case:
      by_model.setdefault((case["encoder"], case["size"]), []).append(case)
  for (encoder, size), group in by_model.items():
    image = _photo(size)
    serve = tf.saved_model.load(os.path.join(os.path.dirname(group[0]["path"]), "saved_model"))
    expected = serve.signatures["serving_default"](images=tf.constant(image))["panoptic_pred"].numpy()
    for case in group:
      got = tflite_conversion.run(tflite_conversion.interpreter(case["path"], num_threads=2),
                                  image)["panoptic_pred"]
      case["random_weights_equal_pixels"] = float(np.mean(got == expected))
      case["random_weights_segments"] = int(len(np.unique(expected)))


def _run_any(interp, image):
  runner = interp.get_signature_runner()
  name = list(runner.get_input_details())[0]
  dtype = runner.get_input_details()[name]["dtype"]
  return runner(**{name: image.astype(dtype)})


def agreement(spec, quantizations, workdir):
  name, config_file, checkpoint, descriptor, image_dir = spec.split(":")
  base = os.path.join(workdir, "agreement_" + name)
  config = kmax_tf.load_config(config_file)
  size = [int(s) for s in config.eval_dataset_options.crop_size]
  saved_model = os.path.join(base, "saved_model")
  _export(config_file, checkpoint, saved_model, size, descriptor=descriptor)
  paths = sorted(os.path.join(image_dir, n) for n in os.listdir(image_dir)
                 if n.lower().endswith((".png", ".jpg", ".jpeg")))
  images = [tf.cast(tf.image.resize(tf.io.decode_image(tf.io.read_file(p), channels=3), size),
                    tf.uint8).numpy()[None] for p in paths]
  serve = tf.saved_model.load(saved_model).signatures["serving_default"]
  reference = [serve(images=tf.constant(im))["panoptic_pred"].numpy() for im in images]
  out = {"name": name, "size": size, "images": len(images), "checkpoint": checkpoint}
  for quantization in quantizations:
    path = os.path.join(base, f"{quantization}.tflite")
    _convert(saved_model, path, quantization)
    interp = tflite_conversion.interpreter(path, num_threads=2)
    equal = [float(np.mean(tflite_conversion.run(interp, im)["panoptic_pred"] == ref))
             for im, ref in zip(images, reference)]
    total = float(np.mean(equal))
    out[quantization] = {"equal_pixels": total, "worst_image": float(np.min(equal)),
                         "size_mb": os.path.getsize(path) / 1e6}
    print(f"agreement {name} {quantization}: {100 * total:.3f}% (worst {100 * min(equal):.2f}%)",
          flush=True)
  return out


_FLAGS = flags.FlagValues()
flags.DEFINE_string("encoders", "tiny_moat0,tiny_moat1,tiny_moat2,tiny_moat3,r50",
                    "Comma-separated encoders: " + ", ".join(CONFIGS), flag_values=_FLAGS)
flags.DEFINE_string("sizes", "641,385", "Comma-separated square input sizes.",
                    flag_values=_FLAGS)
flags.DEFINE_string("small_size_encoders", "tiny_moat0,r50",
                    "encoders also measured at the sizes after the first", flag_values=_FLAGS)
flags.DEFINE_string("quantizations", "none,float16,dynamic_int8",
                    "Comma-separated TFLite quantizations.", flag_values=_FLAGS)
flags.DEFINE_integer("rounds", 5, "Timed rounds (every file once per round).",
                     flag_values=_FLAGS)
flags.DEFINE_multi_string("agreement", [],
                          "NAME:CONFIG:CHECKPOINT:DESCRIPTOR:IMAGE_DIR of a trained model "
                          "(repeatable).", flag_values=_FLAGS)
flags.DEFINE_string("profile", "tiny_moat0_641",
                    "ENCODER_SIZE whose network is also timed in cumulative cuts ('' = none)",
                    flag_values=_FLAGS)
flags.DEFINE_string("profile_parts", "encoder,pixel_decoder,heads",
                    "Comma-separated cuts of --profile.", flag_values=_FLAGS)
flags.DEFINE_string("workdir", "/tmp/kmax_tflite_mobile",
                    "Checkpoint, SavedModel and TFLite files (kept and reused).",
                    flag_values=_FLAGS)
flags.DEFINE_string("output_json", None, "JSON file to write (default: none).",
                    flag_values=_FLAGS)


def _benchmark(args: flags.FlagValues) -> int:
  quantizations = args.quantizations.split(",")
  sizes = [int(s) for s in args.sizes.split(",")]
  small = set(args.small_size_encoders.split(","))
  os.makedirs(args.workdir, exist_ok=True)
  cases = []
  for encoder in args.encoders.split(","):
    wanted = sizes[:1] + [s for s in sizes[1:] if encoder in small]
    cases += build_files([encoder], wanted, quantizations, args.workdir)
  if args.profile:
    cases += profile_files(args.profile, args.profile_parts.split(","), quantizations,
                           args.workdir)
  time_files(cases, args.rounds)
  random_weight_agreement(cases)
  results = {"cases": cases, "agreement": [agreement(a, quantizations, args.workdir)
                                           for a in args.agreement],
             "load_average": os.getloadavg(), "rounds": args.rounds,
             "machine": deeplab2_beside.machine_record()}
  for c in cases:
    print(f"{c['encoder']:>11} {c['size']} {c.get('cut', 'full'):>13} {c['quantization']:>13} "
          f"{c['size_mb']:7.1f} MB {c['latency_s']:6.3f} s "
          f"{100 * c.get('random_weights_equal_pixels', float('nan')):.2f}%")
  target = [c for c in cases if c["encoder"] == "tiny_moat0" and c["size"] == 641
            and c["quantization"] == "dynamic_int8"]
  if target:
    results["target_tiny_moat0_int8_641"] = {
        "size_mb": target[0]["size_mb"], "latency_s": target[0]["latency_s"],
        "size_met": target[0]["size_mb"] <= TARGET_INT8_MB,
        "latency_met": target[0]["latency_s"] <= TARGET_S}
    print("target:", results["target_tiny_moat0_int8_641"])
  if args.output_json:
    os.makedirs(os.path.dirname(os.path.abspath(args.output_json)), exist_ok=True)
    with open(args.output_json, "w") as f:
      json.dump(results, f, indent=1)
  return 0


main = cli.command(_FLAGS, _benchmark, __doc__)


if __name__ == "__main__":
  sys.exit(main())
