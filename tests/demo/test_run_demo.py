"""The demo command: synthetic data -> converter -> training -> held-out PQ
(kMaX-DeepLab, Yu et al., ECCV 2022).

`test_demo_plumbing` runs the whole command on a few images for a few steps.
`test_demo_acceptance` is the Quickstart promise: the default command finishes
within 15 minutes on a 2-core machine and prints a held-out PQ >= 0.5 (run it
on an otherwise idle machine).
"""
import json
import os
import re
import subprocess
import sys
import time

import pytest

_PQ_LINE = re.compile(r"\[demo\] PQ on the held-out split \((\d+) images\): ([0-9.]+)")


def _demo(work_dir, *flags, timeout):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  started = time.time()
  result = subprocess.run([sys.executable, "-m", "kmax_tf.demo", f"--work_dir={work_dir}",
                           *flags], env=env, capture_output=True, text=True, timeout=timeout)
  assert result.returncode == 0, result.stderr[-4000:]
  match = _PQ_LINE.search(result.stdout)
  assert match, result.stdout[-4000:]
  return float(match.group(2)) / 100, time.time() - started, result.stdout


def test_demo_plumbing(tmp_path):
  small = ["--num_train_images=8", "--num_val_images=4",
           "--config_override=trainer_options.solver_options.training_number_of_steps=2",
           "--config_override=trainer_options.steps_per_loop=1",
           "--config_override=trainer_options.save_summaries_steps=1",
           "--config_override=train_dataset_options.batch_size=2"]
  pq, _, out = _demo(tmp_path, *small, timeout=1800)
  assert 0.0 <= pq <= 1.0
  for step in ("1/3", "2/3", "3/3"):
    assert f"[demo] {step}" in out
  assert int(_PQ_LINE.search(out).group(1)) == 4
  # The printed PQ is the evaluator's, on the held-out records (printed to 0.1%).
  with open(tmp_path / "model" / "eval" / "panoptic_quality.json") as f:
    assert json.load(f)["All"]["pq"] == pytest.approx(pq, abs=5.1e-4)
  assert os.path.exists(tmp_path / "records" / "dataset_descriptor.json")
  # A re-run reuses data, records and the finished model, and reports the same PQ.
  again, _, _ = _demo(tmp_path, *small, timeout=1800)
  assert again == pytest.approx(pq)


@pytest.mark.large
def test_demo_acceptance(tmp_path):
  pq, seconds, out = _demo(tmp_path, timeout=3600)
  assert seconds <= 15 * 60, out[-2000:]
  assert pq >= 0.5, out[-2000:]


@pytest.mark.large
def test_demo_trains_with_a_tiny_moat_encoder(tmp_path):
  """The mobile variant of BENCHMARKS.md's demo table, shortened to plumbing size."""
  pq, _, out = _demo(
      tmp_path, "--num_train_images=8", "--num_val_images=4",
      "--config_override=model_options.backbone.name=kmax_tiny_moat0_pretrain_256_1k",
      "--config_override=trainer_options.solver_options.training_number_of_steps=2",
      "--config_override=trainer_options.steps_per_loop=1",
      "--config_override=train_dataset_options.batch_size=2", timeout=1800)
  assert 0.0 <= pq <= 1.0 and "[demo] 3/3" in out
