"""Shared exports for the deployment tests.

Weights: the coco_r50 parity-fixture manifest written as a DeepLab2-format
checkpoint (what a model-zoo user hands to export_model.py); the shared small
export uses its confident, stable edit with 4 mask slots (test_tflite.py's
docstring says what and why), so that the maps it is checked on have segments
and no near-ties. The end-to-end
fixtures build and export the full ResNet-50 kMaX-DeepLab at a small crop (65),
so that the default suite runs them; the modules that share them are one
pytest-xdist group, so one worker builds them once.
"""
import os

import numpy as np
import pytest
import tensorflow as tf

import kmax_tf
from kmax_tf.checkpoints import checkpoint_io
from kmax_tf.testing import deeplab2_checkpoint_writer
from kmax_tf.testing import deeplab2_fixtures as fx
from kmax_tf.testing import parity_models

REPO_ROOT = fx.repo_root()

MODEL_NAME = "coco_r50"
SMALL_CROP = 65
MAX_INPUT_SIZE = 1000
# The fixture config's post-processing area limits, in pixels of the crop.
THING_AREA_LIMIT = 400
STUFF_AREA_LIMIT = 6400
REFERENCE_CROP = 257


def area_limit_overrides(crop):
  """Area limits scaled to keep the fraction of the image they have at REFERENCE_CROP.

  A 65x65 crop has 4,225 pixels: with the config's 6,400 no stuff segment could
  ever be kept and the deployment tests would compare empty maps.
  """
  scale = (crop / REFERENCE_CROP) ** 2
  return [f"evaluator_options.thing_area_limit={max(1, round(THING_AREA_LIMIT * scale))}",
          f"evaluator_options.stuff_area_limit={max(1, round(STUFF_AREA_LIMIT * scale))}"]


# Confident, stable weights: see test_tflite.py's docstring for the four edits and why.
SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
SILENCED_BRANCH_NORMS = ("_kmeans_memory_conv3_bn", "_memory_conv3_bn", "_memory_ffn_conv2_bn")
CLASS_KERNEL_SCALE = 30.0
VOID_BIAS = -20.0
MASK_LOGIT_SCALE = 10.0
NUM_SLOTS = 4


def confident_weights(values):
  """Edits {checkpoint key: array} of the fixture model as test_tflite.py's docstring says."""
  values = dict(values)
  silenced = 0
  for key in list(values):
    parts = key[:-len(SUFFIX)].split("/") if key.endswith(SUFFIX) else []
    if (key.startswith("transformer_decoder/_kmax_decoder/") and len(parts) >= 3 and
        parts[-3] in SILENCED_BRANCH_NORMS and parts[-2] == "_batch_norm" and
        parts[-1] in ("gamma", "beta")):
      values[key] = np.zeros_like(values[key])
      silenced += 1
  assert silenced == 6 * len(SILENCED_BRANCH_NORMS) * 2, silenced
  kernel = "transformer_class_head/_conv/kernel" + SUFFIX
  bias = "transformer_class_head/_conv/bias" + SUFFIX
  values[kernel] = values[kernel] * CLASS_KERNEL_SCALE
  values[bias] = values[bias].copy()
  values[bias][-1] = VOID_BIAS
  for name in ("gamma", "beta"):
    key = f"pixel_space_mask_batch_norm/{name}" + SUFFIX
    values[key] = values[key] * MASK_LOGIT_SCALE
  centers = "transformer_decoder/cluster_centers" + SUFFIX
  values[centers] = values[centers][:, :NUM_SLOTS].copy()
  return values


def confident_overrides(crop):
  """Config overrides of the confident model exported at `crop`."""
  return [f"model_options.kmax_deeplab.num_mask_slots={NUM_SLOTS}"] + area_limit_overrides(crop)


def config_args(crop, extra_overrides=()):
  """(config file, overrides) of the fixture model at `crop`, as the CLI takes them."""
  path = os.path.join(fx.fixtures_dir(), "deeplab2_configs",
                      parity_models.FIXTURE_CONFIGS[MODEL_NAME])
  overrides = []
  for split in ("train_dataset_options", "eval_dataset_options"):
    overrides += [f"{split}.crop_size={crop},{crop}", f"{split}.min_resize_value={crop}",
                  f"{split}.max_resize_value={crop}"]
  overrides += ["model_options.initial_checkpoint="] + list(extra_overrides)
  return path, overrides


def export_cli(checkpoint, output_dir, crop, extra_args=(), extra_overrides=()):
  from kmax_tf.export import export_command  # pylint: disable=g-import-not-at-top
  path, overrides = config_args(crop, extra_overrides)
  argv = [f"--config_file={path}", f"--checkpoint={checkpoint}", f"--output_dir={output_dir}"]
  argv += [f"--config_override={o}" for o in overrides] + list(extra_args)
  assert export_command.main(argv) == 0
  return output_dir


def keras_model(checkpoint, crop, extra_overrides=()):
  path, overrides = config_args(crop, extra_overrides)
  model = kmax_tf.build_model(kmax_tf.load_config(path, overrides))
  checkpoint_io.load_checkpoint(model, checkpoint)
  return model


@pytest.fixture(scope="session")
def deeplab2_checkpoint(tmp_path_factory):
  prefix = str(tmp_path_factory.mktemp("dl2_ckpt") / "ckpt")
  return deeplab2_checkpoint_writer.write_checkpoint(MODEL_NAME, prefix)


@pytest.fixture(scope="session")
def confident_checkpoint(tmp_path_factory, deeplab2_checkpoint):
  reader = tf.train.load_checkpoint(deeplab2_checkpoint)
  names = sorted(reader.get_variable_to_shape_map())
  values = confident_weights({n: reader.get_tensor(n) for n in names})
  prefix = str(tmp_path_factory.mktemp("confident_ckpt") / "ckpt")
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                    tensors=[tf.constant(values[n]) for n in names])
  return prefix


@pytest.fixture(scope="session")
def small_export(tmp_path_factory, confident_checkpoint):
  """SavedModel at crop 65, any input size, at most MAX_INPUT_SIZE per side."""
  output_dir = str(tmp_path_factory.mktemp("saved_model") / "1")
  return export_cli(confident_checkpoint, output_dir, SMALL_CROP,
                    extra_args=[f"--max_input_size={MAX_INPUT_SIZE}"],
                    extra_overrides=confident_overrides(SMALL_CROP))


@pytest.fixture(scope="session")
def small_crop():
  return SMALL_CROP


@pytest.fixture(scope="session")
def small_keras_model(confident_checkpoint):
  return keras_model(confident_checkpoint, SMALL_CROP, confident_overrides(SMALL_CROP))
