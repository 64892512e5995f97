"""A checkpoint trained for another class count: an error when resuming or evaluating, and a
re-initialization of the class layers when given as initial_checkpoint (kMaX-DeepLab, Yu et
al., ECCV 2022). Runs the real trainer.py on tiny converted demo data.
"""
import json
import os
import subprocess
import sys

import pytest


TIMEOUT = 1500


def _spare_class_records(tmp_path, demo_records):
  """The demo data with one more (unused) stuff category: 8 classes instead of 7."""
  raw = os.path.join(os.path.dirname(demo_records), "raw")
  with open(os.path.join(raw, "annotations", "panoptic_train.json"), encoding="utf-8") as f:
    data = json.load(f)
  data["categories"].append({"id": 7, "name": "spare", "isthing": 0})
  annotation = tmp_path / "panoptic_train.json"
  annotation.write_text(json.dumps(data), encoding="utf-8")
  out = tmp_path / "records"
  subprocess.run([sys.executable, "-m", "kmax_tf.data.build_panoptic_tfrecords",
                  "--format=custom", "--dataset_name=demo_plus_one", "--splits=train",
                  f"--image_dir={os.path.join(raw, 'train')}", f"--panoptic_json={annotation}",
                  f"--panoptic_dir={os.path.join(raw, 'annotations', 'panoptic_train')}",
                  f"--output_dir={out}", "--num_workers=1", "--progress=false"],
                 check=True, capture_output=True, timeout=300)
  return str(out)


def _plus_one_overrides(cli, demo_records, records):
  return cli.overrides(demo_records, 1) + [
      "train_dataset_options.dataset=demo_plus_one",
      f"train_dataset_options.file_pattern={records}/train*.tfrecord",
      "eval_dataset_options.dataset=demo_plus_one",
      f"eval_dataset_options.file_pattern={records}/train*.tfrecord",
      "model_options.max_deeplab.auxiliary_semantic_head.output_channels=8"]


@pytest.mark.large
def test_class_count_mismatch(tmp_path, demo_records, trainer_cli):
  seven = tmp_path / "seven"
  first = subprocess.run(trainer_cli.command(trainer_cli.overrides(demo_records, 1),
                                             f"--model_dir={seven}", "--mode=train"),
                         env=trainer_cli.env(), capture_output=True, text=True, timeout=TIMEOUT)
  assert first.returncode == 0, first.stderr[-4000:]
  records = _spare_class_records(tmp_path, demo_records)
  overrides = _plus_one_overrides(trainer_cli, demo_records, records)

  resumed = subprocess.run(trainer_cli.command(overrides, f"--model_dir={seven}", "--mode=eval"),
                           env=trainer_cli.env(), capture_output=True, text=True, timeout=TIMEOUT)
  assert resumed.returncode == 1, resumed.stderr[-4000:]
  assert "was trained for a different number of classes" in resumed.stderr
  assert "dataset 'demo_plus_one' (8 classes including void)" in resumed.stderr
  assert "7 output channels in the checkpoint, 8 in the model" in resumed.stderr

  fine_tuned = subprocess.run(
      trainer_cli.command(overrides + [f"model_options.initial_checkpoint={seven}"],
                          f"--model_dir={tmp_path / 'eight'}", "--mode=train"),
      env=trainer_cli.env(), capture_output=True, text=True, timeout=TIMEOUT)
  assert fine_tuned.returncode == 0, fine_tuned.stderr[-4000:]
  assert "class layers re-initialized" in fine_tuned.stderr
  assert os.path.exists(tmp_path / "eight" / "ckpt-1.index")
