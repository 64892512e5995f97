r"""Largest difference to DeepLab2 over every array of the parity fixtures.

  python benchmarks/parity.py [--output_json benchmarks/results/parity.json]

For each fixture model (COCO R50, ConvNeXt-T, Axial-R50; Cityscapes R50; and COCO
tiny-MOAT-0 from tests/testdata/deeplab2_moat) and both
batch-norm builds (DeepLab2's synchronized/non-fused BN, and our default fused BN):
imports the fixture weights through a DeepLab2-format checkpoint, runs the fixture
photo, and reports max |ours - DeepLab2| / max |DeepLab2| over all stored float
arrays, plus whether the integer maps and every kMaX layer's argmax are identical.
"""
import json
import os
import sys
import tempfile

from absl import flags
import numpy as np
import tensorflow as tf

import kmax_tf
from kmax_tf import cli
from kmax_tf import outputs as keys
from kmax_tf.testing import deeplab2_checkpoint_writer
from kmax_tf.testing import deeplab2_fixtures as fx
from kmax_tf.testing import parity_models

_FLOAT = (keys.SEMANTIC_LOGITS, keys.PIXEL_SPACE_MASK_LOGITS, keys.TRANSFORMER_CLASS_LOGITS,
          keys.PIXEL_SPACE_NORMALIZED_FEATURE, keys.INSTANCE_SCORES, keys.SEMANTIC_SCORES)
_INT = (keys.PANOPTIC_PRED, keys.INSTANCE_PRED, keys.SEMANTIC_PRED)


def measure(model_name, synchronized, ckpt):
  npz = fx.forward_fixture(model_name)
  model = parity_models.build_fixture_model(model_name, synchronized_batch_norm=synchronized)
  kmax_tf.load_deeplab2_checkpoint(model, ckpt)
  images = tf.constant(npz["input_uint8"], tf.float32)
  out = model(images, training=False, output_keys=_FLOAT + _INT)
  arrays = {f"out/{k}": out[k].numpy() for k in _FLOAT}
  endpoints = model._features(images, training=False)  # pylint: disable=protected-access
  for key, value in endpoints.items():
    for group in ("encoder", "pixel_decoder", "transformer_decoder"):
      if fx.has_array(npz, f"{group}/{key}"):
        arrays[f"{group}/{key}"] = value.numpy()
  argmax_equal = True
  for i, aux in enumerate(endpoints[keys.AUXILIARY_OUTPUTS]):
    for k in (keys.PIXEL_SPACE_MASK_LOGITS, keys.TRANSFORMER_CLASS_LOGITS,
              keys.PIXEL_SPACE_NORMALIZED_FEATURE):
      arrays[f"kmax_layer{i}/{k}"] = aux[k].numpy()
    argmax_equal &= bool(np.array_equal(np.argmax(aux[keys.PIXEL_SPACE_MASK_LOGITS].numpy(), -1),
                                        npz[f"kmax_layer{i}/pixel_space_mask_logits@argmax"]))
  worst, worst_key = 0.0, None
  for key, value in arrays.items():
    if not fx.has_array(npz, key):
      continue
    expected, got = fx.compare(npz, key, value)
    rel = float(np.max(np.abs(expected - got)) / max(np.max(np.abs(expected)), 1e-6))
    if rel >= worst:
      worst, worst_key = rel, key
  maps_equal = all(np.array_equal(out[k].numpy(), npz[f"out/{k}"]) for k in _INT)
  return {"model": model_name, "bn": "synchronized" if synchronized else "fused",
          "arrays_compared": sum(fx.has_array(npz, k) for k in arrays),
          "max_relative_diff": worst, "worst_array": worst_key,
          "maps_identical": maps_equal, "kmax_argmax_identical": argmax_equal}


_FLAGS = flags.FlagValues()
flags.DEFINE_string("output_json", "benchmarks/results/parity.json", "JSON file to write.",
                    flag_values=_FLAGS)
flags.DEFINE_string("models", ",".join(fx.MODEL_NAMES + fx.MOAT_MODEL_NAMES),
                    "Comma-separated fixture models.", flag_values=_FLAGS)


def _benchmark(args: flags.FlagValues) -> int:
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for name in args.models.split(","):
      ckpt = deeplab2_checkpoint_writer.write_checkpoint(name, os.path.join(tmp, name, "ckpt"))
      for synchronized in (True, False):
        r = measure(name, synchronized, ckpt)
        print(f"| {r['model']} | {r['bn']} | {r['arrays_compared']} | {r['max_relative_diff']:.2e} "
              f"({r['worst_array']}) | {r['maps_identical']} | {r['kmax_argmax_identical']} |",
              flush=True)
        rows.append(r)
  os.makedirs(os.path.dirname(args.output_json) or ".", exist_ok=True)
  with open(args.output_json + ".tmp", "w") as f:
    json.dump(rows, f, indent=2)
  os.replace(args.output_json + ".tmp", args.output_json)
  return 0


main = cli.command(_FLAGS, _benchmark, __doc__)


if __name__ == "__main__":
  sys.exit(main())
