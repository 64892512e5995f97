r"""Converts a DeepLab2 kMaX-DeepLab checkpoint into a kmax_tf checkpoint.

  kmax-import-deeplab2 \
      --config_file=configs/coco/kmax_r50.textproto \
      --checkpoint=/path/to/deeplab2/ckpt-150000 --output=/path/to/kmax_r50_coco/ckpt

Accepts DeepLab2's model-only layout (export/eval), its trainer layout (model +
optimizers + global step; the model-zoo downloads) and, with --backbone_only,
ImageNet backbone checkpoints. The mapping is explicit by name: any unmatched
name on either side, or a shape mismatch, is an error listing them.
"""
import sys

from absl import flags

from kmax_tf import cli

_FLAGS = flags.FlagValues()
cli.define_config_flags(_FLAGS)
flags.DEFINE_string("checkpoint", None, "DeepLab2 checkpoint prefix or directory.",
                    required=True, flag_values=_FLAGS)
flags.DEFINE_string("output", None, "Output checkpoint prefix.", required=True,
                    flag_values=_FLAGS)
flags.DEFINE_bool("backbone_only", False,
                  "Import only the pixel encoder (ImageNet checkpoints).", flag_values=_FLAGS)


def _import_command(f: flags.FlagValues) -> int:
  import kmax_tf  # pylint: disable=g-import-not-at-top
  from kmax_tf.checkpoints import checkpoint_io  # pylint: disable=g-import-not-at-top
  config = kmax_tf.load_config(f.config_file, f.config_override)
  model = kmax_tf.build_model(config)
  report = kmax_tf.load_deeplab2_checkpoint(model, f.checkpoint, backbone_only=f.backbone_only)
  written = checkpoint_io.save_model_checkpoint(model, f.output)
  step = f", global step {report.global_step}" if report.global_step is not None else ""
  print(f"Imported {report.num_assigned} variables from {report.path} "
        f"({report.layout} layout{step}) -> {written}")
  return 0


main = cli.command(_FLAGS, _import_command, __doc__,
                   input_errors=(ValueError, FileNotFoundError))


if __name__ == "__main__":
  sys.exit(main())
