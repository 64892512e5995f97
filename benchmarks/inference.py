r"""Forward latency of kMaX-DeepLab, float32, batch 1, on this machine.

  python benchmarks/inference.py [--cases r50_641,r50_1281,convnext_tiny_641] \
      [--repeats 5] [--output_json benchmarks/results/inference.json]

Measures `model(images, training=False)` inside one tf.function, computing the
outputs a panoptic user needs (mask logits, class logits, normalized feature;
optionally + post-processing), after warm-up. DeepLab2's figures on this
2-core machine (tf.function forward, float32; ../shared/docs/deeplab2_measured.md):
R50 641: 1.54 s, R50 1281: 5.63 s, ConvNeXt-T 641: 3.09 s.
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import tensorflow as tf

import kmax_tf
from kmax_tf import outputs as keys

_CONFIGS = {"r50": "configs/coco/kmax_r50.textproto",
            "convnext_tiny": "configs/coco/kmax_convnext_tiny.textproto",
            "axial_r50": "configs/coco/kmax_axial_r50.textproto"}
DEEPLAB2_SECONDS = {"r50_641": 1.54, "r50_1281": 5.63, "convnext_tiny_641": 3.09}
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(case, repeats, post_processing, bfloat16=False):
  name, size = case.rsplit("_", 1)
  size = int(size)
  config = kmax_tf.load_config(os.path.join(_ROOT, _CONFIGS[name]), [
      f"eval_dataset_options.crop_size={size},{size}",
      f"train_dataset_options.crop_size={size},{size}"])
  if bfloat16:
    import tf_keras  # pylint: disable=g-import-not-at-top
    tf_keras.mixed_precision.set_global_policy("mixed_bfloat16")
  model = kmax_tf.build_model(config)
  output_keys = (keys.PIXEL_SPACE_MASK_LOGITS, keys.TRANSFORMER_CLASS_LOGITS,
                 keys.PIXEL_SPACE_NORMALIZED_FEATURE)
  if post_processing:
    output_keys += keys.POST_PROCESSED_OUTPUTS
  forward = tf.function(lambda x: model(x, training=False, output_keys=output_keys))
  images = tf.constant(np.random.RandomState(0).uniform(0, 255, [1, size, size, 3]), tf.float32)
  t0 = time.perf_counter()
  forward(images)
  first = time.perf_counter() - t0
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    result = forward(images)
    _ = [v.numpy() for v in result.values()]
    times.append(time.perf_counter() - t0)
  return {"case": case, "post_processing": post_processing, "bfloat16": bfloat16,
          "median_s": statistics.median(times), "min_s": min(times), "first_call_s": first,
          "repeats": repeats, "deeplab2_s": DEEPLAB2_SECONDS.get(case),
          "ratio_to_deeplab2": (statistics.median(times) / DEEPLAB2_SECONDS[case]
                                if case in DEEPLAB2_SECONDS else None)}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--cases", default="r50_641,r50_1281,convnext_tiny_641")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--post_processing", action="store_true")
  parser.add_argument("--bfloat16", action="store_true")
  parser.add_argument("--output_json", default=os.path.join(_ROOT, "benchmarks", "results",
                                                            "inference.json"))
  args = parser.parse_args()
  results = []
  for case in args.cases.split(","):
    r = measure(case, args.repeats, args.post_processing, args.bfloat16)
    ratio = f"{r['ratio_to_deeplab2']:.2f}x DeepLab2" if r["ratio_to_deeplab2"] else ""
    print(f"{case}: median {r['median_s']:.3f} s (min {r['min_s']:.3f}, first call "
          f"{r['first_call_s']:.1f} s) {ratio}", flush=True)
    results.append(r)
  os.makedirs(os.path.dirname(args.output_json), exist_ok=True)
  tmp = args.output_json + ".tmp"
  with open(tmp, "w") as f:
    json.dump({"tf_version": tf.__version__, "results": results}, f, indent=2)
  os.replace(tmp, args.output_json)


if __name__ == "__main__":
  main()
