"""End-to-end parity with DeepLab2 on the real COCO photo of the parity fixtures.

Weights are rebuilt from the fixture manifest into a DeepLab2-format checkpoint
(the layout a DeepLab2 user downloads), imported through the real import path
(kmax_tf.load_deeplab2_checkpoint), and the model runs the fixture input.

Tolerance: |ours - DeepLab2| <= 1e-4 * max|DeepLab2| per array. The fixture
README measures DeepLab2 against itself at up to 4.8e-5 relative when only the
CPU kernels change (oneDNN off, or tf.function); we build DeepLab2's
synchronized (non-fused) BN, so the remaining differences are kernel-order
round-off. Integer maps and every kMaX layer's argmax must be identical.
"""
import numpy as np
import pytest
import tensorflow as tf

import kmax_tf
from kmax_tf import outputs as keys
from kmax_tf.testing import deeplab2_checkpoint_writer
from kmax_tf.testing import deeplab2_fixtures as fx
from kmax_tf.testing import parity_models

# Runs again in CI with the other oneDNN setting (.ci/run).
pytestmark = pytest.mark.kernels

REL_TOL = 1e-4
FLOAT_OUTPUTS = (keys.SEMANTIC_LOGITS, keys.PIXEL_SPACE_MASK_LOGITS, keys.TRANSFORMER_CLASS_LOGITS,
                 keys.PIXEL_SPACE_NORMALIZED_FEATURE, keys.INSTANCE_SCORES, keys.SEMANTIC_SCORES)
INT_OUTPUTS = (keys.PANOPTIC_PRED, keys.INSTANCE_PRED, keys.SEMANTIC_PRED)


def _assert_close(npz, key, actual):
  expected, got = fx.compare(npz, key, actual)
  scale = max(float(np.max(np.abs(expected))), 1e-6)
  diff = float(np.max(np.abs(expected - got)))
  assert diff <= REL_TOL * scale, f"{key}: max|diff| {diff:.3g} > {REL_TOL} * {scale:.3g}"
  return diff


@pytest.mark.parametrize("model_name,synchronized_bn",
                         [(name, True) for name in fx.MODEL_NAMES + fx.MOAT_MODEL_NAMES]
                         + [("coco_r50", False), ("coco_tiny_moat0", False)])
def test_forward_parity_through_deeplab2_checkpoint(model_name, synchronized_bn, tmp_path):
  """synchronized_bn=True is DeepLab2's BN; False is our default (fused) inference build."""
  npz = fx.forward_fixture(model_name)
  model = parity_models.build_fixture_model(model_name, synchronized_batch_norm=synchronized_bn)
  prefix = deeplab2_checkpoint_writer.write_checkpoint(model_name, str(tmp_path / "ckpt"))
  report = kmax_tf.load_deeplab2_checkpoint(model, prefix)
  assert report.layout == "model_only"
  assert report.num_assigned == len(model.variables)

  images = tf.constant(npz["input_uint8"], tf.float32)
  out = model(images, training=False, output_keys=FLOAT_OUTPUTS + INT_OUTPUTS)
  for key in FLOAT_OUTPUTS:
    if fx.has_array(npz, f"out/{key}"):
      _assert_close(npz, f"out/{key}", out[key].numpy())
  for key in INT_OUTPUTS:
    np.testing.assert_array_equal(out[key].numpy(), npz[f"out/{key}"], err_msg=key)

  # Intermediate endpoints and every kMaX layer's auxiliary outputs.
  endpoints = model._features(images, training=False)  # pylint: disable=protected-access
  for key in list(endpoints):
    for group in ("encoder", "pixel_decoder", "transformer_decoder"):
      name = f"{group}/{key}"
      if fx.has_array(npz, name):
        _assert_close(npz, name, endpoints[key].numpy())
  for i, aux in enumerate(endpoints[keys.AUXILIARY_OUTPUTS]):
    for key in (keys.PIXEL_SPACE_MASK_LOGITS, keys.TRANSFORMER_CLASS_LOGITS,
                keys.PIXEL_SPACE_NORMALIZED_FEATURE):
      _assert_close(npz, f"kmax_layer{i}/{key}", aux[key].numpy())
    np.testing.assert_array_equal(
        np.argmax(aux[keys.PIXEL_SPACE_MASK_LOGITS].numpy(), -1),
        npz[f"kmax_layer{i}/pixel_space_mask_logits@argmax"], err_msg=f"kmax_layer{i} argmax")
  np.testing.assert_array_equal(np.argmax(out[keys.PIXEL_SPACE_MASK_LOGITS].numpy(), -1),
                                npz["out/pixel_space_mask_logits@argmax"])
