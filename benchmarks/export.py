r"""Deployment benchmark: SavedModel size / load time / serving latency, TFLite size / latency.

  python benchmarks/export.py [--crop=641] [--quantizations=none,float16,dynamic_int8,full_int8] \
      [--repeats=5] [--workdir=/tmp/kmax_export_bench] \
      [--output_json=benchmarks/results/export.json]

Model: kMaX-DeepLab ResNet-50 COCO (configs/coco/kmax_r50.textproto) at a square eval
crop (default 641) with the coco_r50 parity-fixture weights written as a DeepLab2
checkpoint (confident outputs, so the post-processor pastes real segments). Steps:
  1. export/export_model.py (any input size); SavedModel size on disk.
  2. In a fresh process: tf.saved_model.load time, first call, then the median
     serving_default latency on real COCO photos (uint8 at their own size; the graph
     resizes, runs, post-processes and resizes back) and serve_image_bytes latency.
  3. Serving vs Keras, interleaved in one process so both see the same machine load:
     each round runs the Keras model (`model(images, training=False,
     output_keys=POST_PROCESSED_OUTPUTS)`: forward + post-processing, the maps serving
     returns, in a tf.function, batch 1 at the crop, on the photo already resized and
     padded) and then serving_default on the photo itself. Reports both medians and the
     median of the per-round differences (serving minus Keras), which cancels the
     slow drift of a shared machine.
  4. export/convert_tflite.py per quantization at the input size of the first photo;
     file size, conversion time, median latency in the stock ai_edge_litert
     interpreter (2 threads), and panoptic-pixel agreement with float32 TFLite and
     with the SavedModel on the photos (resized to that size).
DeepLab2's figures from another run on this machine type
(../shared/docs/deeplab2_measured.md, recorded as a reference, not a side-by-side
measurement): SavedModel 333 MB, load 35 s, serving 1.52 s (R50 641, batch 1 only);
TFLite of the full graph does not convert. Timings on the shared 2-core machines vary about +-20%.
"""
import glob
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

import kmax_tf  # pylint: disable=wrong-import-position
from kmax_tf import cli  # pylint: disable=wrong-import-position
from kmax_tf import outputs as keys  # pylint: disable=wrong-import-position
from kmax_tf.checkpoints import checkpoint_io  # pylint: disable=wrong-import-position
from kmax_tf.export import tflite_conversion  # pylint: disable=wrong-import-position
from kmax_tf.testing import deeplab2_checkpoint_writer  # pylint: disable=wrong-import-position
from kmax_tf.testing import deeplab2_fixtures  # pylint: disable=wrong-import-position

import deeplab2_beside  # pylint: disable=wrong-import-position

CONFIG = os.path.join(_ROOT, "configs", "coco", "kmax_r50.textproto")
DEEPLAB2 = {"saved_model_mb": 333, "load_s": 35.0, "serving_s": 1.52}
INT8_TARGET_MB = 80

LOAD_CHILD = r"""
import json, statistics, sys, time
t0 = time.perf_counter()
import tensorflow as tf
import_s = time.perf_counter() - t0
path, photos, repeats = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
t0 = time.perf_counter()
loaded = tf.saved_model.load(path)
load_s = time.perf_counter() - t0
serve = loaded.signatures["serving_default"]
images = [tf.io.decode_image(tf.io.read_file(p), channels=3)[tf.newaxis] for p in photos]
t0 = time.perf_counter()
serve(images=images[0])["panoptic_pred"].numpy()
first_s = time.perf_counter() - t0
times = []
for i in range(repeats):
  image = images[i % len(images)]
  t0 = time.perf_counter()
  out = serve(images=image)
  _ = {k: v.numpy() for k, v in out.items()}
  times.append(time.perf_counter() - t0)
by_bytes = loaded.signatures["serve_image_bytes"]
data = tf.constant([tf.io.read_file(photos[0]).numpy()])
by_bytes(image_bytes=data)
bytes_times = []
for _ in range(max(2, repeats // 2)):
  t0 = time.perf_counter()
  _ = {k: v.numpy() for k, v in by_bytes(image_bytes=data).items()}
  bytes_times.append(time.perf_counter() - t0)
print(json.dumps({"import_tf_s": import_s, "load_s": load_s, "first_call_s": first_s,
                  "serving_median_s": statistics.median(times), "serving_min_s": min(times),
                  "bytes_median_s": statistics.median(bytes_times)}))
"""


def _dir_mb(path):
  total = 0
  for root, _, files in os.walk(path):
    total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
  return total / 1e6


def _overrides(crop):
  return [f"{split}.{field}={crop}" + (f",{crop}" if field == "crop_size" else "")
          for split in ("train_dataset_options", "eval_dataset_options")
          for field in ("crop_size", "min_resize_value", "max_resize_value")]


def serving_vs_keras(crop, checkpoint, saved_model, photos, repeats):
  """Median latencies of the Keras model and of serving_default, measured alternately."""
  from kmax_tf.data import preprocessing  # pylint: disable=g-import-not-at-top
  model = kmax_tf.build_model(kmax_tf.load_config(CONFIG, _overrides(crop)))
  checkpoint_io.load_checkpoint(model, checkpoint)
  forward = tf.function(lambda x: model(x, training=False,
                                        output_keys=keys.POST_PROCESSED_OUTPUTS))
  serve = tf.saved_model.load(saved_model).signatures["serving_default"]
  images, crops = [], []
  for path in photos:
    image = tf.io.decode_image(tf.io.read_file(path), channels=3)
    images.append(image[tf.newaxis])
    resized, _ = preprocessing.resize_to_range(tf.cast(image, tf.float32), None, crop, crop)
    crops.append(preprocessing.pad_image_and_label(resized, None, 0, 0, crop, crop)[0][None])
  forward(crops[0])
  serve(images=images[0])
  keras_times, serving_times = [], []

  def timed(fn, times):
    t0 = time.perf_counter()
    _ = {k: v.numpy() for k, v in fn().items()}
    times.append(time.perf_counter() - t0)

  for i in range(repeats):
    keras = (lambda: forward(crops[i % len(crops)]), keras_times)
    serving = (lambda: serve(images=images[i % len(images)]), serving_times)
    # Alternate which goes first, so neither always follows the other.
    for fn, times in ((keras, serving) if i % 2 == 0 else (serving, keras)):
      timed(fn, times)
  differences = [s - k for s, k in zip(serving_times, keras_times)]
  return {"keras_median_s": statistics.median(keras_times), "keras_min_s": min(keras_times),
          "median_difference_s": statistics.median(differences),
          "serving_faster_rounds": sum(d < 0 for d in differences),
          "serving_median_s": statistics.median(serving_times),
          "serving_min_s": min(serving_times), "repeats": repeats,
          "keras_outputs": sorted(keys.POST_PROCESSED_OUTPUTS)}


def _photos(count):
  return sorted(glob.glob(os.path.join(deeplab2_fixtures.fixtures_dir(), "coco_val2017_16",
                                       "val2017", "*.jpg")))[:count]


def _resized_photos(paths, size):
  out = []
  for p in paths:
    image = tf.io.decode_image(tf.io.read_file(p), channels=3)
    out.append(tf.cast(tf.round(tf.image.resize(image, size)), tf.uint8).numpy()[np.newaxis])
  return out


def tflite_case(saved_model, quantization, size, photos, workdir, repeats, reference):
  path = os.path.join(workdir, f"kmax_{quantization}.tflite")
  t0 = time.perf_counter()
  subprocess.run([sys.executable, os.path.join(_ROOT, "export", "convert_tflite.py"),
                  f"--saved_model={saved_model}", f"--output={path}",
                  f"--input_size={size[0]}x{size[1]}", f"--quantization={quantization}",
                  f"--representative_dir={os.path.dirname(photos[0])}"], check=True)
  convert_s = time.perf_counter() - t0
  interp = tflite_conversion.interpreter(path, num_threads=2)
  images = _resized_photos(photos, size)
  maps = [tflite_conversion.run(interp, im)["panoptic_pred"] for im in images]
  times = []
  for i in range(repeats):
    t0 = time.perf_counter()
    tflite_conversion.run(interp, images[i % len(images)])
    times.append(time.perf_counter() - t0)
  result = {"quantization": quantization, "size_mb": os.path.getsize(path) / 1e6,
            "convert_s": convert_s, "median_s": statistics.median(times), "min_s": min(times),
            "input_size": list(size)}
  result["agreement_vs_saved_model"] = float(np.mean(
      [np.mean(m == r) for m, r in zip(maps, reference["saved_model"])]))
  result["equal_to_saved_model"] = sum(
      bool(np.array_equal(m, r)) for m, r in zip(maps, reference["saved_model"]))
  if "none" in reference:
    result["agreement_vs_float32"] = float(np.mean(
        [np.mean(m == r) for m, r in zip(maps, reference["none"])]))
  reference.setdefault(quantization, maps)
  return result


_FLAGS = flags.FlagValues()
flags.DEFINE_integer("crop", 641, "Square eval crop of the exported model.", flag_values=_FLAGS)
flags.DEFINE_string("quantizations", "none,float16,dynamic_int8,full_int8",
                    "TFLite cases; empty for none", flag_values=_FLAGS)
flags.DEFINE_integer("repeats", 5, "Timed calls per measurement.", flag_values=_FLAGS)
flags.DEFINE_integer("photos", 4, "COCO fixture photos to run.", flag_values=_FLAGS)
flags.DEFINE_string("workdir", "/tmp/kmax_export_bench",
                    "Checkpoint, SavedModel and TFLite files (kept and reused).",
                    flag_values=_FLAGS)
flags.DEFINE_string("output_json", os.path.join(_ROOT, "benchmarks", "results", "export.json"),
                    "JSON file to write.", flag_values=_FLAGS)


def _benchmark(args: flags.FlagValues) -> int:
  os.makedirs(args.workdir, exist_ok=True)
  results = {"crop": args.crop, "tf_version": tf.__version__,
             "deeplab2_reference_from_another_run": DEEPLAB2,
             "machine": deeplab2_beside.machine_record()}

  checkpoint = os.path.join(args.workdir, "dl2_ckpt", "ckpt")
  if not os.path.exists(checkpoint + ".index"):
    deeplab2_checkpoint_writer.write_checkpoint("coco_r50", checkpoint)

  saved_model = os.path.join(args.workdir, f"saved_model_{args.crop}", "1")
  if not os.path.exists(os.path.join(saved_model, "saved_model.pb")):
    t0 = time.perf_counter()
    subprocess.run([sys.executable, os.path.join(_ROOT, "export", "export_model.py"),
                    f"--config_file={CONFIG}", f"--checkpoint={checkpoint}",
                    f"--output_dir={saved_model}"]
                   + [f"--config_override={o}" for o in _overrides(args.crop)], check=True)
    results["export_s"] = time.perf_counter() - t0
  results["saved_model_mb"] = _dir_mb(saved_model)
  results["saved_model_graph_mb"] = os.path.getsize(
      os.path.join(saved_model, "saved_model.pb")) / 1e6

  photos = _photos(args.photos)
  proc = subprocess.run([sys.executable, "-c", LOAD_CHILD, saved_model, json.dumps(photos),
                         str(args.repeats)], capture_output=True, text=True, check=True,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  results["serving"] = json.loads(proc.stdout.strip().splitlines()[-1])
  s = results["serving"]
  print(f"SavedModel {results['saved_model_mb']:.0f} MB, load {s['load_s']:.1f} s, first call "
        f"{s['first_call_s']:.1f} s, serving {s['serving_median_s']:.3f} s, bytes "
        f"{s['bytes_median_s']:.3f} s", flush=True)

  results["serving_vs_keras"] = serving_vs_keras(args.crop, checkpoint, saved_model, photos,
                                                 2 * args.repeats)
  c = results["serving_vs_keras"]
  print(f"interleaved: Keras forward + post-processing {c['keras_median_s']:.3f} s, "
        f"serving_default {c['serving_median_s']:.3f} s; per round serving - Keras: median "
        f"{1e3 * c['median_difference_s']:+.1f} ms, serving faster in "
        f"{c['serving_faster_rounds']}/{c['repeats']} rounds", flush=True)

  size = list(tf.io.decode_image(tf.io.read_file(photos[0])).shape[:2])
  loaded = tf.saved_model.load(saved_model)
  reference = {"saved_model": [
      loaded.signatures["serving_default"](images=im)["panoptic_pred"].numpy()
      for im in _resized_photos(photos, size)]}
  del loaded
  results["tflite"] = []
  for quantization in [q for q in args.quantizations.split(",") if q]:
    r = tflite_case(saved_model, quantization, size, photos, args.workdir, args.repeats,
                    reference)
    results["tflite"].append(r)
    print(f"TFLite {quantization}: {r['size_mb']:.0f} MB, {r['median_s']:.3f} s, agreement vs "
          f"SavedModel {r['agreement_vs_saved_model']:.5f}"
          + (f", vs float32 {r['agreement_vs_float32']:.5f}" if "agreement_vs_float32" in r
             else ""), flush=True)

  results["targets"] = {
      "load_le_half_deeplab2_reference": s["load_s"] <= 0.5 * DEEPLAB2["load_s"],
      "serving_le_keras": c["serving_median_s"] <= c["keras_median_s"],
      "int8_le_80mb": all(r["size_mb"] <= INT8_TARGET_MB for r in results["tflite"]
                          if r["quantization"] in ("dynamic_int8", "full_int8")),
  }
  os.makedirs(os.path.dirname(os.path.abspath(args.output_json)), exist_ok=True)
  with open(args.output_json + ".tmp", "w") as f:
    json.dump(results, f, indent=2)
  os.replace(args.output_json + ".tmp", args.output_json)
  print(json.dumps(results["targets"]))
  return 0


main = cli.command(_FLAGS, _benchmark, __doc__)


if __name__ == "__main__":
  sys.exit(main())
