r"""Panoptic-map agreement of bfloat16 inference with float32 on a trained model.

  python -m kmax_tf.demo --work_dir=/tmp/kmax_demo          # trains the model (~12 min)
  python benchmarks/bfloat16_agreement.py --work_dir=/tmp/kmax_demo \
      [--output_json=benchmarks/results/bfloat16_agreement.json]

kMaX-DeepLab: Yu et al., "k-means Mask Transformer", ECCV 2022. Builds the demo
model (configs/demo/kmax_demo.textproto) twice from its last checkpoint, in
float32 and with `kmax_tf.predict --precision=bfloat16`'s mixed bfloat16 build,
and runs both on the demo's held-out images (preprocessed as the predictor
does). Reports the fraction of panoptic pixels that are equal and the images
whose set of segment ids is the same. A trained model is needed: with random
weights the kMaX cluster assignments are near ties and any rounding changes
them. Speed: `python benchmarks/inference.py --bfloat16`.
"""
import glob
import os
import sys

from absl import flags
import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import kmax_tf  # pylint: disable=g-import-not-at-top,wrong-import-position
from kmax_tf import cli  # pylint: disable=g-import-not-at-top,wrong-import-position

import deeplab2_beside  # the script's own directory is on sys.path
from kmax_tf import predict  # pylint: disable=g-import-not-at-top,wrong-import-position
from kmax_tf.data import descriptor_json  # pylint: disable=g-import-not-at-top,wrong-import-position
from kmax_tf.export import saved_model_export  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

CONFIG = os.path.join(_ROOT, "configs", "demo", "kmax_demo.textproto")


_FLAGS = flags.FlagValues()
flags.DEFINE_string("work_dir", None, "`python -m kmax_tf.demo --work_dir`", required=True,
                    flag_values=_FLAGS)
flags.DEFINE_string("output_json", "", "JSON file to write ('': none).", flag_values=_FLAGS)


def _benchmark(args: flags.FlagValues) -> int:
  records = os.path.join(args.work_dir, "records")
  checkpoint = tf.train.latest_checkpoint(os.path.join(args.work_dir, "model"))
  images = sorted(glob.glob(os.path.join(args.work_dir, "data", "val", "*.png")))
  if checkpoint is None or not images:
    raise FileNotFoundError(f"no trained demo in {args.work_dir} (expected model/ckpt-* and "
                            "data/val/*.png); run python -m kmax_tf.demo --work_dir=... first")
  config = kmax_tf.load_config(CONFIG, [
      f"train_dataset_options.file_pattern={records}/train*.tfrecord",
      f"eval_dataset_options.file_pattern={records}/val*.tfrecord"])
  saved_model_export.register_dataset(
      config, os.path.join(records, descriptor_json.DESCRIPTOR_FILENAME))
  predictors = {}
  for precision in predict.PRECISIONS:
    model, _ = predict.build_inference_model(config, checkpoint, precision)
    predictors[precision] = predict.PanopticPredictor.for_config(model, config)
  equal = total = same_segments = 0
  worst = 1.0
  for path in images:
    image = predict.read_image(path)
    maps = {p: predictors[p](image)[0] for p in predict.PRECISIONS}
    match = maps["float32"] == maps["bfloat16"]
    equal += int(match.sum())
    total += match.size
    worst = min(worst, float(match.mean()))
    same_segments += set(np.unique(maps["float32"])) == set(np.unique(maps["bfloat16"]))
  result = {"checkpoint": checkpoint, "images": len(images),
            "panoptic_pixels_equal": equal / total, "worst_image_pixels_equal": worst,
            "images_with_same_segment_ids": same_segments}
  print(f"{len(images)} images: {100 * equal / total:.2f}% of panoptic pixels equal "
        f"(worst image {100 * worst:.2f}%), same segment ids in {same_segments}/{len(images)}")
  if args.output_json:
    deeplab2_beside.write_json(args.output_json, result)
  return 0


main = cli.command(_FLAGS, _benchmark, __doc__, input_errors=(FileNotFoundError,))


if __name__ == "__main__":
  sys.exit(main())
