r"""Converts an exported kMaX-DeepLab SavedModel to a TFLite model with post-processing.

  kmax-convert-tflite --saved_model=/models/kmax/1 --output=kmax.tflite \
      [--input_size=HxW] [--quantization={none,float16,dynamic_int8,full_int8}] \
      [--representative_dir=IMAGES_DIR]

(also `python export/convert_tflite.py ...`). The .tflite file takes uint8
images [1, H, W, 3] and returns the same maps and segment table as the
SavedModel's serving_default signature, using TFLite builtin operators only (it
runs in the stock interpreter, no Flex delegate). --input_size is required when
the SavedModel accepts any size. full_int8 calibrates on the .jpg/.png images of
--representative_dir.
"""
import os
import sys
import time

from absl import flags

from kmax_tf import cli
from kmax_tf.export import tflite_conversion

_FLAGS = flags.FlagValues()
flags.DEFINE_string("saved_model", None, "SavedModel directory.", required=True,
                    flag_values=_FLAGS)
flags.DEFINE_string("output", None, ".tflite file to write.", required=True, flag_values=_FLAGS)
flags.DEFINE_string("input_size", None,
                    "Image size HxW of the TFLite input (default: the SavedModel's).",
                    flag_values=_FLAGS)
flags.DEFINE_enum("quantization", "none", tflite_conversion.QUANTIZATIONS, "Weight/activation "
                  "types.", flag_values=_FLAGS)
flags.DEFINE_string("representative_dir", None,
                    "Directory of .jpg/.png images (full_int8 calibration).", flag_values=_FLAGS)
flags.DEFINE_integer("batch_size", 1, "Batch size of the TFLite input.", flag_values=_FLAGS)


def _convert_command(f: flags.FlagValues) -> int:
  input_size = cli.parse_size(f.input_size) if f.input_size else None
  start = time.time()
  flatbuffer = tflite_conversion.convert(
      f.saved_model, f.quantization, input_size=input_size, batch_size=f.batch_size,
      representative_dir=f.representative_dir)
  os.makedirs(os.path.dirname(os.path.abspath(f.output)), exist_ok=True)
  tmp = f.output + ".tmp"
  with open(tmp, "wb") as out:
    out.write(flatbuffer)
  os.replace(tmp, f.output)
  print(f"{f.output}: {len(flatbuffer) / 2**20:.1f} MiB ({f.quantization}) "
        f"in {time.time() - start:.0f} s")
  return 0


main = cli.command(_FLAGS, _convert_command, __doc__,
                   input_errors=(ValueError, FileNotFoundError))


if __name__ == "__main__":
  sys.exit(main())
