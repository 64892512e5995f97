"""Shared fixtures of the trainer tests: a tiny converted copy of the demo dataset."""
import os
import subprocess
import sys

import pytest

from kmax_tf.demo import synthetic_panoptic

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "demo", "kmax_demo.textproto")
CROP = 65


@pytest.fixture(scope="session")
def demo_records(tmp_path_factory):
  """Records of 8 training and 4 held-out 64x64 scenes, converted by the custom converter."""
  root = tmp_path_factory.mktemp("demo")
  synthetic_panoptic.write_dataset(str(root / "raw"), (("train", 8), ("val", 4)), seed=1,
                                   size=CROP - 1)
  subprocess.run([sys.executable, "-m", "kmax_tf.data.build_panoptic_tfrecords",
                  "--format=custom", f"--root={root / 'raw'}",
                  f"--dataset_name={synthetic_panoptic.DATASET_NAME}", "--splits=train,val",
                  f"--output_dir={root / 'records'}", "--num_workers=1", "--progress=false"],
                 check=True, capture_output=True, timeout=300)
  return str(root / "records")


class TrainerCli:
  """Builds trainer.py command lines for tiny, fast, deterministic demo runs."""

  @staticmethod
  def overrides(records: str, steps: int):
    return tiny_overrides(records, steps)

  @staticmethod
  def command(config_overrides, *flags):
    return trainer_command(config_overrides, *flags)

  @staticmethod
  def env():
    return quiet_env()


@pytest.fixture(scope="session")
def trainer_cli():
  return TrainerCli()


def tiny_overrides(records: str, steps: int):
  """Config overrides of a tiny, fast, deterministic demo run."""
  return [
      f"train_dataset_options.file_pattern={records}/train*.tfrecord",
      f"eval_dataset_options.file_pattern={records}/val*.tfrecord",
      f"train_dataset_options.crop_size={CROP},{CROP}",
      f"train_dataset_options.min_resize_value={CROP}",
      f"train_dataset_options.max_resize_value={CROP}",
      f"eval_dataset_options.crop_size={CROP},{CROP}",
      f"eval_dataset_options.min_resize_value={CROP}",
      f"eval_dataset_options.max_resize_value={CROP}",
      "train_dataset_options.batch_size=2",
      "eval_dataset_options.batch_size=2",
      "model_options.kmax_deeplab.num_mask_slots=8",
      # No random pixel sampling in the loss: runs must be reproducible.
      "model_options.max_deeplab.instance_discrimination_sample_k=0",
      "train_dataset_options.augmentations.min_scale_factor=1.0",
      "train_dataset_options.augmentations.max_scale_factor=1.0",
      f"trainer_options.solver_options.training_number_of_steps={steps}",
      "trainer_options.solver_options.warmup_steps=0",
      "trainer_options.steps_per_loop=1",
      f"trainer_options.save_summaries_steps={steps}",
      "trainer_options.save_checkpoints_steps=2",
      "trainer_options.num_checkpoints_to_keep=10",
      f"evaluator_options.eval_interval={steps}",
  ]


def trainer_command(config_overrides, *flags):
  return ([sys.executable, os.path.join(REPO, "trainer.py"), f"--config_file={CONFIG}"]
          + [f"--config_override={o}" for o in config_overrides] + list(flags))


def quiet_env():
  return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
