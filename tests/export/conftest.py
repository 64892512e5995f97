"""Shared exports for the deployment tests.

Weights: the coco_r50 parity-fixture manifest written as a DeepLab2-format
checkpoint (what a model-zoo user hands to export_model.py). The end-to-end
fixtures build and export a full ResNet-50 kMaX-DeepLab, so the tests that use
them are marked `large`.
"""
import os
import sys

import pytest

import kmax_tf
from kmax_tf.checkpoints import checkpoint_io
from kmax_tf.testing import deeplab2_checkpoint_writer
from kmax_tf.testing import deeplab2_fixtures as fx
from kmax_tf.testing import parity_models

REPO_ROOT = fx.repo_root()
if REPO_ROOT not in sys.path:
  sys.path.insert(0, REPO_ROOT)  # the `export` tools package

MODEL_NAME = "coco_r50"
SMALL_CROP = 129
MAX_INPUT_SIZE = 1000


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
  from export import export_model  # pylint: disable=g-import-not-at-top
  path, overrides = config_args(crop, extra_overrides)
  argv = [f"--config_file={path}", f"--checkpoint={checkpoint}", f"--output_dir={output_dir}"]
  argv += [f"--config_override={o}" for o in overrides] + list(extra_args)
  return export_model.main(argv)


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
def small_export(tmp_path_factory, deeplab2_checkpoint):
  """SavedModel at crop 129, any input size, at most MAX_INPUT_SIZE per side."""
  output_dir = str(tmp_path_factory.mktemp("saved_model") / "1")
  return export_cli(deeplab2_checkpoint, output_dir, SMALL_CROP,
                    extra_args=[f"--max_input_size={MAX_INPUT_SIZE}"])


@pytest.fixture(scope="session")
def small_crop():
  return SMALL_CROP


@pytest.fixture(scope="session")
def small_keras_model(deeplab2_checkpoint):
  return keras_model(deeplab2_checkpoint, SMALL_CROP)
