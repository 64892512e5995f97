r"""Exports a kMaX-DeepLab checkpoint as a SavedModel for TF Serving.

  kmax-export --config_file=CONFIG.textproto \
      --checkpoint=CKPT_PREFIX_OR_DIR --output_dir=/models/kmax/1 [--input_size=HxW]

(also `python export/export_model.py ...`). The checkpoint is a kmax_tf
checkpoint or a DeepLab2 kMaX checkpoint (model zoo, trainer or model-only
layout). Without --input_size the model accepts any image size; the network
always runs at the config's eval crop. TF Serving wants a numbered version
folder: point --output_dir at `<model_base_path>/<version>`.
"""
import os
import sys
import time

from absl import flags

from kmax_tf import cli
from kmax_tf.export import saved_model_export

_FLAGS = flags.FlagValues()
cli.define_config_flags(_FLAGS)
flags.DEFINE_string("checkpoint", None, "Checkpoint prefix or directory (kmax_tf or DeepLab2).",
                    required=True, flag_values=_FLAGS)
flags.DEFINE_string("output_dir", None, "SavedModel directory to write.", required=True,
                    flag_values=_FLAGS)
flags.DEFINE_string("input_size", None,
                    "Fix the image size HxW of serving_default (default: any size).",
                    flag_values=_FLAGS)
flags.DEFINE_integer("max_input_size", saved_model_export.DEFAULT_MAX_INPUT_SIZE,
                     "Largest accepted image side; larger requests are rejected.",
                     flag_values=_FLAGS)
flags.DEFINE_string("dataset_descriptor", None,
                    "dataset_descriptor.json of a custom dataset (default: found beside the "
                    "config's records).", flag_values=_FLAGS)


def _export_command(f: flags.FlagValues) -> int:
  import kmax_tf  # pylint: disable=g-import-not-at-top
  input_size = cli.parse_size(f.input_size) if f.input_size else None
  if os.path.exists(os.path.join(f.output_dir, "saved_model.pb")):
    raise ValueError(f"{f.output_dir} already holds a SavedModel; choose a new version folder")
  start = time.time()
  config = kmax_tf.load_config(f.config_file, f.config_override)
  saved_model_export.export_saved_model(
      config, f.output_dir, checkpoint=f.checkpoint, input_size=input_size,
      max_input_size=f.max_input_size, dataset_descriptor=f.dataset_descriptor)
  print(f"SavedModel written to {f.output_dir} in {time.time() - start:.0f} s")
  return 0


main = cli.command(_FLAGS, _export_command, __doc__,
                   input_errors=(ValueError, FileNotFoundError))


if __name__ == "__main__":
  sys.exit(main())
