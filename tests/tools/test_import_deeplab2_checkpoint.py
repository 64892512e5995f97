"""`python -m kmax_tf.tools.import_deeplab2_checkpoint` end to end."""
import os
import subprocess
import sys

import numpy as np

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
