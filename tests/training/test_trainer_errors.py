"""trainer.py reports configuration and data mistakes clearly (kMaX-DeepLab, Yu et al., ECCV 2022).

Each case runs the real command line and checks the exit code and message;
they all stop before a model is built, so they are fast.
"""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "demo", "kmax_demo.textproto")


def _run(tmp_path, *args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run([sys.executable, os.path.join(REPO, "trainer.py"), *args],
                        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_misspelt_override_names_the_field_and_suggests_the_fix(tmp_path):
  result = _run(tmp_path, f"--config_file={CONFIG}", f"--model_dir={tmp_path}",
                "--config_override=train_dataset_options.batch_sise=4")
  assert result.returncode == 1, result.stderr
  assert "unknown field 'batch_sise'" in result.stderr
  assert "did you mean 'batch_size'?" in result.stderr


def test_bad_override_value_is_reported(tmp_path):
  result = _run(tmp_path, f"--config_file={CONFIG}",
                "--config_override=trainer_options.solver_options.base_learning_rate=fast")
  assert result.returncode == 1
  assert "base_learning_rate" in result.stderr and "'fast'" in result.stderr


def test_file_pattern_matching_nothing_hints_at_the_converter(tmp_path):
  result = _run(tmp_path, f"--config_file={CONFIG}", f"--model_dir={tmp_path / 'm'}",
                f"--config_override=train_dataset_options.file_pattern={tmp_path}/none*.tfrecord")
  assert result.returncode == 1, result.stderr
  assert "No TFRecord files match file_pattern" in result.stderr
  assert "python -m kmax_tf.data.build_panoptic_tfrecords --format=custom" in result.stderr


def test_unknown_mode_is_a_usage_error(tmp_path):
  result = _run(tmp_path, f"--config_file={CONFIG}", "--mode=training")
  assert result.returncode == 2
  assert "--mode" in result.stderr and "train_and_eval" in result.stderr
