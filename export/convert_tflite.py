r"""Converts an exported kMaX-DeepLab SavedModel to a TFLite model with post-processing.

kMaX-DeepLab: Yu et al., "k-means Mask Transformer", ECCV 2022.

  python export/convert_tflite.py --saved_model=/models/kmax/1 --output=kmax.tflite \
      [--input_size=HxW] [--quantization={none,float16,dynamic_int8,full_int8}] \
      [--representative_dir=IMAGES_DIR]

The .tflite file takes uint8 images [1, H, W, 3] and returns the same maps and
segment table as the SavedModel's serving_default signature, using TFLite
builtin operators only (it runs in the stock interpreter, no Flex delegate).
--input_size is required when the SavedModel accepts any size. full_int8
calibrates on the .jpg/.png images of --representative_dir.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from export import export_model  # pylint: disable=g-import-not-at-top,wrong-import-position
from kmax_tf.export import tflite_conversion  # pylint: disable=g-import-not-at-top,wrong-import-position


def build_parser():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--saved_model", required=True, help="SavedModel directory")
  parser.add_argument("--output", required=True, help=".tflite file to write")
  parser.add_argument("--input_size", type=export_model.parse_size, default=None,
                      help="image size HxW of the TFLite input (default: the SavedModel's)")
  parser.add_argument("--quantization", choices=tflite_conversion.QUANTIZATIONS, default="none")
  parser.add_argument("--representative_dir", default=None,
                      help="directory of .jpg/.png images (full_int8 calibration)")
  parser.add_argument("--batch_size", type=int, default=1)
  return parser


def main(argv=None):
  args = build_parser().parse_args(argv)
  start = time.time()
  flatbuffer = tflite_conversion.convert(
      args.saved_model, args.quantization, input_size=args.input_size,
      batch_size=args.batch_size, representative_dir=args.representative_dir)
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  with open(args.output, "wb") as f:
    f.write(flatbuffer)
  print(f"{args.output}: {len(flatbuffer) / 2**20:.1f} MiB ({args.quantization}) "
        f"in {time.time() - start:.0f} s")
  return args.output


if __name__ == "__main__":
  main()
