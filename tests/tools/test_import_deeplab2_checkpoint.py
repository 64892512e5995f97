"""`python -m kmax_tf.tools.import_deeplab2_checkpoint` end to end."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.checkpoints import checkpoint_io
from kmax_tf.testing import deeplab2_checkpoint_writer as writer
from kmax_tf.testing import deeplab2_fixtures as fx
from kmax_tf.testing import parity_models


def _cli(args, cwd):
  return subprocess.run([sys.executable, "-m", "kmax_tf.tools.import_deeplab2_checkpoint"] + args,
                        cwd=cwd, capture_output=True, text=True, timeout=600)


def _config_args(model_name):
  path = os.path.join(fx.fixtures_dir(), "deeplab2_configs", parity_models.FIXTURE_CONFIGS[model_name])
  return [f"--config_file={path}",
          "--config_override=eval_dataset_options.crop_size=129,129",
          "--config_override=train_dataset_options.crop_size=129,129"]


def test_trainer_checkpoint_converts_to_ours(tmp_path):
  source = writer.write_checkpoint("coco_r50", str(tmp_path / "dl2" / "ckpt-5000"), "trainer")
  result = _cli(_config_args("coco_r50") + [f"--checkpoint={source}",
                                             f"--output={tmp_path / 'ours' / 'ckpt'}"], tmp_path)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Imported 1184 variables" in result.stdout and "trainer layout, global step 1234" in result.stdout
  written = result.stdout.strip().rsplit("-> ", 1)[1]
  assert not checkpoint_io.is_deeplab2_checkpoint(written)
  # No temporary files are left next to the output.
  assert not [n for n in os.listdir(tmp_path / "ours") if n.startswith(".tmp")]
  model = parity_models.build_fixture_model("coco_r50", crop=129)
  checkpoint_io.load_checkpoint(model, written)
  weights = fx.manifest_weights("coco_r50")
  for key, var in model.deeplab2_variable_map().items():
    np.testing.assert_array_equal(var.numpy(), weights[key], err_msg=key)


def test_checkpoint_of_another_backbone_fails_and_writes_nothing(tmp_path):
  source = writer.write_checkpoint("coco_convnext_tiny", str(tmp_path / "dl2" / "ckpt"))
  result = _cli(_config_args("coco_r50") + [f"--checkpoint={source}",
                                             f"--output={tmp_path / 'ours' / 'ckpt'}"], tmp_path)
  assert result.returncode == 1
  assert "does not match the model" in result.stderr
  assert "model variables with no checkpoint entry 265" in result.stderr
  assert not os.path.exists(tmp_path / "ours")


def _moat_config_args():
  return _config_args("coco_tiny_moat0") + [
      f"--config_override=model_options.backbone.name={parity_models.BACKBONE_NAMES['coco_tiny_moat0']}",
      "--config_override=model_options.backbone.pretrained_weights="]


def test_moat_trainer_checkpoint_backbone_only(tmp_path):
  """DeepLab2 trainer layout of kMaX tiny-MOAT-0 (written from the DeepLab2 run's
  object graph and optimizer listing), imported encoder-only (the model-only
  layout is the whole-model parity test's)."""
  import kmax_tf  # pylint: disable=g-import-not-at-top
  source = writer.write_checkpoint("coco_tiny_moat0", str(tmp_path / "dl2" / "ckpt-9"), "trainer")
  model = parity_models.build_fixture_model("coco_tiny_moat0", crop=129)
  report = kmax_tf.load_deeplab2_checkpoint(model, source, backbone_only=True)
  assert (report.layout, report.num_assigned, report.global_step) == ("trainer", 357, 1234)
  weights = fx.manifest_weights("coco_tiny_moat0")
  for key, var in model.deeplab2_variable_map().items():
    if key.startswith("encoder/"):
      np.testing.assert_array_equal(var.numpy(), weights[key], err_msg=key)
    elif key.endswith("/kernel"):
      assert not np.array_equal(var.numpy(), weights[key]), key


def _write_moat_imagenet_checkpoint(prefix, extras=True):
  """A name-based checkpoint with the names DeepLab2's MOAT loader reads
  (variables/moat_imagenet_tiny_moat0_names.tsv, listed from DeepLab2's
  tiny-MOAT-0, which loaded a file with exactly these names with
  strict_loading=True), values by the manifest rule of the fixtures, plus
  entries such files also hold and that are not read."""
  tensors = {}
  path = os.path.join(fx.moat_testdata_dir(), "variables", "moat_imagenet_tiny_moat0_names.tsv")
  with open(path) as f:
    for line in f:
      name, shape = line.rstrip("\n").split("\t")
      tensors[name] = fx.manifest_value(name, tuple(json.loads(shape)), 0.0, 0.1)
  if extras:
    tensors["moat/block_00_00/pre_norm/moving_mean"] = np.ones([32], np.float32)
    tensors["moat/block_00_00/pre_norm/gamma/ExponentialMovingAverage"] = np.ones([32], np.float32)
    tensors["moat/logits_head/kernel"] = np.ones([1, 1, 256, 1000], np.float32)
    tensors["global_step"] = np.array(7, np.int64)
  names = sorted(tensors)
  os.makedirs(os.path.dirname(prefix), exist_ok=True)
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                    tensors=[tf.constant(tensors[n]) for n in names])
  return prefix, tensors


def test_moat_imagenet_checkpoint_backbone_only(tmp_path):
  source, tensors = _write_moat_imagenet_checkpoint(str(tmp_path / "imagenet" / "model.ckpt"))
  result = _cli(_moat_config_args() + [f"--checkpoint={source}", "--backbone_only",
                                        f"--output={tmp_path / 'ours' / 'ckpt'}"], tmp_path)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Imported 271 variables" in result.stdout and "moat_imagenet layout" in result.stdout
  written = result.stdout.strip().rsplit("-> ", 1)[1]
  model = parity_models.build_fixture_model("coco_tiny_moat0", crop=129)
  checkpoint_io.load_checkpoint(model, written)
  names = model.deeplab2_imagenet_variable_map()
  assert len(names) == 271
  for name, var in names.items():
    np.testing.assert_array_equal(var.numpy(), tensors[name], err_msg=name)
  # As in DeepLab2's loader, BN moving statistics are not read from these files.
  stem_norm = model.pixel_encoder.stem_norms[0]
  np.testing.assert_array_equal(stem_norm.moving_variance.numpy(), np.ones([32], np.float32))


def test_moat_imagenet_checkpoint_errors(tmp_path):
  import kmax_tf  # pylint: disable=g-import-not-at-top
  from kmax_tf.checkpoints import deeplab2_checkpoint_reader  # pylint: disable=g-import-not-at-top
  source, tensors = _write_moat_imagenet_checkpoint(str(tmp_path / "a" / "model.ckpt"), extras=False)
  # What a model with another encoder passes (its imagenet_variable_map is None).
  with pytest.raises(ValueError, match="pixel encoder is not MOAT"):
    deeplab2_checkpoint_reader.load_deeplab2_checkpoint({}, source, imagenet_variable_map=None)
  del tensors["moat/block_02_00/attention/q/weight"]
  names = sorted(tensors)
  prefix = str(tmp_path / "b" / "model.ckpt")
  os.makedirs(os.path.dirname(prefix))
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                    tensors=[tf.constant(tensors[n]) for n in names])
  model = parity_models.build_fixture_model("coco_tiny_moat0", crop=65)
  before = model.pixel_encoder.stem_convs[0].kernel.numpy()
  with pytest.raises(ValueError, match="block_02_00/attention/q/weight"):
    kmax_tf.load_deeplab2_checkpoint(model, prefix, backbone_only=True)
  np.testing.assert_array_equal(model.pixel_encoder.stem_convs[0].kernel.numpy(), before)
