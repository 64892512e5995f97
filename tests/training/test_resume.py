"""A run killed with SIGKILL resumes from its last checkpoint and ends with the weights an
uninterrupted run has (kMaX-DeepLab, Yu et al., ECCV 2022).

Both runs use --deterministic (TF op determinism) and the same seed. Resumed
runs see the same training examples because the trainer re-seeds its input at
every loop from (seed, global step). Tolerance: exact equality.
"""
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf


STEPS = 6
TIMEOUT = 1500


def _train(cli, model_dir, overrides):
  return subprocess.Popen(cli.command(overrides, f"--model_dir={model_dir}", "--mode=train",
                                      "--deterministic", "--seed=3"),
                          env=cli.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)


def _finish(process):
  out, _ = process.communicate(timeout=TIMEOUT)
  assert process.returncode == 0, out[-4000:]


def _variables(model_dir, step):
  reader = tf.train.load_checkpoint(os.path.join(model_dir, f"ckpt-{step}"))
  names = [n for n in reader.get_variable_to_shape_map()
           if n.startswith(("model/", "optimizer/")) and "VARIABLE_VALUE" in n]
  return {n: reader.get_tensor(n) for n in names}


@pytest.mark.large
def test_sigkill_then_resume_equals_uninterrupted(tmp_path, demo_records, trainer_cli):
  overrides = trainer_cli.overrides(demo_records, STEPS)
  straight = _train(trainer_cli, tmp_path / "straight", overrides)
  _finish(straight)

  killed_dir = tmp_path / "killed"
  victim = _train(trainer_cli, killed_dir, overrides)
  deadline = time.time() + TIMEOUT
  while not os.path.exists(killed_dir / "ckpt-2.index"):
    assert victim.poll() is None, victim.communicate()[0][-4000:]
    assert time.time() < deadline, "no checkpoint at step 2 in time"
    time.sleep(0.5)
  victim.send_signal(signal.SIGKILL)
  victim.wait(timeout=60)
  assert not os.path.exists(killed_dir / f"ckpt-{STEPS}.index")
  resumed = _train(trainer_cli, killed_dir, overrides)
  out, _ = resumed.communicate(timeout=TIMEOUT)
  assert resumed.returncode == 0, out[-4000:]
  assert "Restored" in out or "restored" in out

  expected = _variables(tmp_path / "straight", STEPS)
  actual = _variables(killed_dir, STEPS)
  assert set(expected) == set(actual) and len(expected) > 500
  different = [n for n in expected if not np.array_equal(expected[n], actual[n])]
  assert not different, different[:10]
