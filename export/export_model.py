r"""Exports a kMaX-DeepLab checkpoint as a SavedModel for TF Serving.

kMaX-DeepLab: Yu et al., "k-means Mask Transformer", ECCV 2022.

  python export/export_model.py --config_file=CONFIG.textproto \
      --checkpoint=CKPT_PREFIX_OR_DIR --output_dir=/models/kmax/1 [--input_size=HxW]

The checkpoint is a kmax_tf checkpoint or a DeepLab2 kMaX checkpoint (model
zoo, trainer or model-only layout). Without --input_size the model accepts any
image size; the network always runs at the config's eval crop. TF Serving wants
a numbered version folder: point --output_dir at `<model_base_path>/<version>`.
"""
import argparse
import os
import sys
import time

# Runs as a script from any directory: the repository root holds kmax_tf.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import kmax_tf  # pylint: disable=g-import-not-at-top,wrong-import-position
from kmax_tf.export import saved_model_export  # pylint: disable=g-import-not-at-top,wrong-import-position


def parse_size(text):
  """'HxW' or 'N' -> [H, W]."""
  parts = text.lower().replace(",", "x").split("x")
  try:
    size = [int(p) for p in parts]
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected HxW, got {text!r}") from None
  if len(size) == 1:
    size *= 2
  if len(size) != 2 or min(size) <= 0:
    raise argparse.ArgumentTypeError(f"expected HxW with positive sides, got {text!r}")
  return size


def build_parser():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--config_file", required=True, help="experiment textproto")
  parser.add_argument("--checkpoint", required=True,
                      help="checkpoint prefix or directory (kmax_tf or DeepLab2)")
  parser.add_argument("--output_dir", required=True, help="SavedModel directory to write")
  parser.add_argument("--input_size", type=parse_size, default=None,
                      help="fix the image size HxW of serving_default (default: any size)")
  parser.add_argument("--max_input_size", type=int,
                      default=saved_model_export.DEFAULT_MAX_INPUT_SIZE,
                      help="largest accepted image side; larger requests are rejected")
  parser.add_argument("--dataset_descriptor", default=None,
                      help="dataset_descriptor.json of a custom dataset (default: found beside "
                      "the config's records)")
  parser.add_argument("--config_override", action="append", default=[],
                      help="'dotted.field=value' config override (repeatable)")
  return parser


def main(argv=None):
  args = build_parser().parse_args(argv)
  if os.path.exists(os.path.join(args.output_dir, "saved_model.pb")):
    raise SystemExit(f"{args.output_dir} already holds a SavedModel; choose a new version folder")
  start = time.time()
  config = kmax_tf.load_config(args.config_file, args.config_override)
  saved_model_export.export_saved_model(
      config, args.output_dir, checkpoint=args.checkpoint, input_size=args.input_size,
      max_input_size=args.max_input_size, dataset_descriptor=args.dataset_descriptor)
  print(f"SavedModel written to {args.output_dir} in {time.time() - start:.0f} s")
  return args.output_dir


if __name__ == "__main__":
  main()
