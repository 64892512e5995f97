"""A kMaX-DeepLab with a tiny-MOAT encoder converts to TFLite builtins and runs.

MOAT adds operations the R50 graph has no equivalent for (multi-head
attention einsums, the resized and gathered relative position bias, 'same'
average pooling, squeeze-and-excitation); the float32 file must convert with
builtin operators only and give the SavedModel's panoptic maps. Weights: the
coco_tiny_moat0 DeepLab2 reference weights (tests/testdata/deeplab2_moat),
written as a DeepLab2 checkpoint and exported at crop 129 with
export/export_model.py. Tolerance: >= 99.9% equal panoptic pixels; TFLite's
XNNPACK and TF's oneDNN kernels sum in different orders, so a pixel whose
mask probabilities are within ~1e-4 of a tie can flip (the larger TFLite
tests measure 0 flips on confident weights, 5 of 1.2M on random ones).
"""
import os

import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.export import tflite_conversion
from kmax_tf.testing import deeplab2_checkpoint_writer
from kmax_tf.testing import deeplab2_fixtures as fx
from kmax_tf.testing import parity_models

CROP = 129
PHOTOS = ("000000397133.jpg", "000000037777.jpg")

# Export + conversion take ~90 s on 2 cores, over the default suite's budget.
pytestmark = pytest.mark.large


def test_tiny_moat_kmax_float32_tflite_equals_saved_model(tmp_path):
  from kmax_tf.export import export_command  # pylint: disable=g-import-not-at-top
  checkpoint = deeplab2_checkpoint_writer.write_checkpoint(
      "coco_tiny_moat0", str(tmp_path / "dl2" / "ckpt"))
  config_path = os.path.join(fx.fixtures_dir(), "deeplab2_configs",
                             parity_models.FIXTURE_CONFIGS["coco_tiny_moat0"])
  overrides = []
  for split in ("train_dataset_options", "eval_dataset_options"):
    overrides += [f"{split}.crop_size={CROP},{CROP}", f"{split}.min_resize_value={CROP}",
                  f"{split}.max_resize_value={CROP}"]
  overrides += ["model_options.initial_checkpoint=", "model_options.backbone.pretrained_weights=",
                f"model_options.backbone.name={parity_models.BACKBONE_NAMES['coco_tiny_moat0']}"]
  saved_model = str(tmp_path / "saved_model")
  assert export_command.main([f"--config_file={config_path}", f"--checkpoint={checkpoint}",
                              f"--output_dir={saved_model}", f"--input_size={CROP}x{CROP}"]
                             + [f"--config_override={o}" for o in overrides]) == 0
  path = tmp_path / "model.tflite"
  path.write_bytes(tflite_conversion.convert(saved_model, "none"))
  interp = tflite_conversion.interpreter(str(path), num_threads=2)
  serve = tf.saved_model.load(saved_model).signatures["serving_default"]
  segments = 0
  for name in PHOTOS:
    image = tf.io.decode_image(tf.io.read_file(
        os.path.join(fx.fixtures_dir(), "coco_val2017_16", "val2017", name)), channels=3)
    image = tf.cast(tf.image.resize(image, [CROP, CROP]), tf.uint8)[tf.newaxis]
    expected = serve(images=image)["panoptic_pred"].numpy()
    got = tflite_conversion.run(interp, image.numpy())["panoptic_pred"]
    assert got.shape == expected.shape
    assert np.mean(got == expected) >= 0.999, name
    segments += len(np.unique(expected))
  assert segments > len(PHOTOS)  # not only void
