r"""Converts a DeepLab2 kMaX-DeepLab checkpoint into a kmax_tf checkpoint.

  python -m kmax_tf.tools.import_deeplab2_checkpoint \
      --config_file=configs/coco/kmax_r50.textproto \
      --checkpoint=/path/to/deeplab2/ckpt-150000 --output=/path/to/kmax_r50_coco/ckpt

Accepts DeepLab2's model-only layout (export/eval), its trainer layout (model +
optimizers + global step; the model-zoo downloads) and, with --backbone_only,
ImageNet backbone checkpoints. The mapping is explicit by name: any unmatched
name on either side, or a shape mismatch, is an error listing them.
"""
import sys

from absl import app
from absl import flags

_CONFIG = flags.DEFINE_string("config_file", None, "Experiment textproto.", required=True)
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "DeepLab2 checkpoint prefix or directory.",
                                  required=True)
_OUTPUT = flags.DEFINE_string("output", None, "Output checkpoint prefix.", required=True)
_BACKBONE_ONLY = flags.DEFINE_bool("backbone_only", False,
                                   "Import only the pixel encoder (ImageNet checkpoints).")
_OVERRIDES = flags.DEFINE_multi_string("config_override", [], "dotted.field=value edits.")


def main(argv):
  del argv
  import kmax_tf  # pylint: disable=g-import-not-at-top
  from kmax_tf.checkpoints import checkpoint_io  # pylint: disable=g-import-not-at-top
  config = kmax_tf.load_config(_CONFIG.value, _OVERRIDES.value)
  model = kmax_tf.build_model(config)
  report = kmax_tf.load_deeplab2_checkpoint(model, _CHECKPOINT.value,
                                            backbone_only=_BACKBONE_ONLY.value)
  written = checkpoint_io.save_model_checkpoint(model, _OUTPUT.value)
  step = f", global step {report.global_step}" if report.global_step is not None else ""
  print(f"Imported {report.num_assigned} variables from {report.path} "
        f"({report.layout} layout{step}) -> {written}")
  return 0


def run():
  try:
    app.run(main)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  run()
