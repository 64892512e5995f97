r"""Latency of the mask-wise panoptic post-processor alone, float32, batch 1.

  python benchmarks/post_processing.py [--repeats 10] \
      [--output_json benchmarks/results/post_processing.json]

Input: the DeepLab2 post-processor fixture (../shared/fixtures/deeplab2_parity/
postprocessor/, mask logits [1, 161, 161, 128] and class logits of a real COCO
photo with confident outputs, so segments are pasted and filtered), turned into
641x641 maps by the post-processor configs/coco/kmax_r50.textproto builds (its
evaluator settings, the coco_panoptic descriptor), in one tf.function, after
warm-up.
kMaX-DeepLab: Yu et al., "k-means Mask Transformer", ECCV 2022.

Absolute times only: for a comparison with DeepLab2, run
`benchmarks/inference.py --deeplab2_dir=...`, which times forward pass and
forward + post-processing of both in one process, alternating rounds.
"""
import os
import statistics
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from absl import flags  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position
import tensorflow as tf  # pylint: disable=wrong-import-position

import kmax_tf  # pylint: disable=wrong-import-position
from kmax_tf import cli  # pylint: disable=wrong-import-position
from kmax_tf import model_builder  # pylint: disable=wrong-import-position
from kmax_tf import outputs as keys  # pylint: disable=wrong-import-position
from kmax_tf.data import datasets  # pylint: disable=wrong-import-position
from kmax_tf.testing import deeplab2_fixtures  # pylint: disable=wrong-import-position

import deeplab2_beside  # pylint: disable=wrong-import-position

CONFIG = os.path.join(_ROOT, "configs", "coco", "kmax_r50.textproto")

_FLAGS = flags.FlagValues()
flags.DEFINE_integer("repeats", 10, "Timed calls after the warm-up call.", flag_values=_FLAGS)
flags.DEFINE_string("output_json", os.path.join(
    _ROOT, "benchmarks", "results", "post_processing.json"), "JSON file to write.",
                    flag_values=_FLAGS)


def _benchmark(args: flags.FlagValues) -> int:
  path = os.path.join(deeplab2_fixtures.parity_dir(), "postprocessor",
                      "postproc_coco_000000037777.npz")
  with np.load(path) as npz:
    mask_logits = tf.constant(npz["input/pixel_space_mask_logits"])
    class_logits = tf.constant(npz["input/transformer_class_logits"])
  config = kmax_tf.load_config(CONFIG)
  post = model_builder.build_post_processor(
      config, datasets.get_dataset_descriptor(config.eval_dataset_options.dataset), [641, 641])
  run = tf.function(lambda m, c: post({keys.PIXEL_SPACE_MASK_LOGITS: m,
                                       keys.TRANSFORMER_CLASS_LOGITS: c}))
  first = run(mask_logits, class_logits)
  segments = len(np.unique(first[keys.PANOPTIC_PRED].numpy()))
  times = []
  for _ in range(args.repeats):
    t0 = time.perf_counter()
    _ = {k: v.numpy() for k, v in run(mask_logits, class_logits).items()}
    times.append(time.perf_counter() - t0)
  result = {"tf_version": tf.__version__, "input": os.path.basename(path),
            "output_size": [641, 641], "panoptic_ids_in_map": segments,
            "median_s": statistics.median(times), "min_s": min(times),
            "repeats": args.repeats,
            "machine": deeplab2_beside.machine_record()}
  print(f"post-processing 641x641: median {1e3 * result['median_s']:.1f} ms "
        f"(min {1e3 * result['min_s']:.1f} ms), {segments} panoptic ids in the map "
        f"({result['machine']['kernel_mode']})",
        flush=True)
  deeplab2_beside.write_json(args.output_json, result)
  return 0


main = cli.command(_FLAGS, _benchmark, __doc__)


if __name__ == "__main__":
  sys.exit(main())
