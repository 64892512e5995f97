"""trainer.py as a user runs it: training, SIGKILL and resume, continuous evaluation,
--mixed_precision and --gradient_recomputation, on the demo config at a 65x65 crop.

Five trainer.py processes of the same tiny, seeded, deterministic run
(--deterministic, --seed=3; TrainerCli's overrides: 8 generated scenes, batch
2, no random pixel sampling in the loss), at most three at a time (tracing is
single-threaded, so two or three processes share two cores well):

  straight   trains 4 steps, checkpoints at 2 and 4;
  evaluator  --mode=continuous_eval on straight's directory, started with it;
  victim     the same run in another directory, SIGKILLed once ckpt-2 exists;
  resumed    trainer.py again on the victim's directory, to step 4;
  recompute  --gradient_recomputation;
  bfloat16   --mixed_precision=bfloat16.

The full-size versions (6 steps, no sharing) are in test_resume.py (large).
"""
import glob
import json
import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf

pytestmark = pytest.mark.xdist_group("trainer_cli")

STEPS = 4
TIMEOUT = 1200
SEED_FLAGS = ("--deterministic", "--seed=3")
# SGD, not the demo's AdamW: Adam divides each update by the gradient's RMS,
# which turns round-off in near-zero gradients into +-learning-rate steps, so
# weights of runs that differ only in round-off would not be comparable.
EXTRA_OVERRIDES = ("trainer_options.save_summaries_steps=1",
                   "trainer_options.solver_options.optimizer=sgd",
                   "trainer_options.solver_options.base_learning_rate=0.05")
TOTAL_LOSS = "losses/train_total_loss"
# bfloat16 keeps 8 bits of mantissa (relative rounding 4e-3 per op); the first
# step's total loss, same weights and batch, measured 4.0e-4 from float32's
# (oneDNN on, AVX-512).
BFLOAT16_LOSS_RTOL = 0.01


class _Job:
  """One trainer.py process; its output goes to a file (no pipe to fill up)."""

  def __init__(self, cli, name, work_dir, model_dir, overrides, *flags):
    self.name = name
    self.model_dir = str(model_dir)
    self.log_path = os.path.join(str(work_dir), f"{name}.log")
    with open(self.log_path, "w") as log:  # the child keeps its own descriptor
      self.process = subprocess.Popen(
          cli.command(overrides, f"--model_dir={model_dir}", *flags), env=cli.env(),
          stdout=log, stderr=subprocess.STDOUT, text=True)

  def output(self):
    with open(self.log_path) as f:
      return f.read()

  def finish(self, timeout=TIMEOUT):
    self.process.wait(timeout=timeout)
    return self.process.returncode, self.output()

  def kill(self):
    if self.process.poll() is None:
      self.process.send_signal(signal.SIGKILL)
      self.process.wait(timeout=60)


def _wait_for(path, job, deadline):
  while not os.path.exists(path):
    assert job.process.poll() is None, f"{job.name} ended early:\n{job.output()[-4000:]}"
    assert time.time() < deadline, f"{job.name}: no {path} in time"
    time.sleep(0.5)


@pytest.fixture(scope="module")
def runs(module_scratch, demo_records, trainer_cli):
  work = module_scratch.mktemp("trainer_cli")
  overrides = trainer_cli.overrides(demo_records, STEPS) + list(EXTRA_OVERRIDES)
  train = ("--mode=train",) + SEED_FLAGS
  jobs = {}
  results = {}
  try:
    jobs["straight"] = _Job(trainer_cli, "straight", work, work / "straight", overrides, *train)
    jobs["evaluator"] = _Job(trainer_cli, "evaluator", work, work / "straight", overrides,
                             "--mode=continuous_eval", *SEED_FLAGS)
    jobs["victim"] = _Job(trainer_cli, "victim", work, work / "resumed", overrides, *train)
    deadline = time.time() + TIMEOUT
    _wait_for(work / "resumed" / "ckpt-2.index", jobs["victim"], deadline)
    jobs["victim"].kill()
    results["victim_files"] = sorted(os.listdir(work / "resumed"))
    jobs["resumed"] = _Job(trainer_cli, "resumed", work, work / "resumed", overrides, *train)
    results["straight"] = jobs["straight"].finish()
    jobs["recompute"] = _Job(trainer_cli, "recompute", work, work / "recompute", overrides, *train,
                             "--gradient_recomputation")
    results["evaluator"] = jobs["evaluator"].finish()
    jobs["bfloat16"] = _Job(trainer_cli, "bfloat16", work, work / "bfloat16", overrides, *train,
                            "--mixed_precision=bfloat16")
    for name in ("resumed", "recompute", "bfloat16"):
      results[name] = jobs[name].finish()
  finally:
    for job in jobs.values():
      job.kill()
  results["dirs"] = {name: job.model_dir for name, job in jobs.items()}
  return results


def _ok(runs, name):
  code, out = runs[name]
  assert code == 0, f"{name} exited with {code}:\n{out[-4000:]}"
  return out


def _variables(model_dir, step):
  reader = tf.train.load_checkpoint(os.path.join(model_dir, f"ckpt-{step}"))
  names = [n for n in reader.get_variable_to_shape_map()
           if n.startswith(("model/", "optimizer/")) and "VARIABLE_VALUE" in n]
  return {n: reader.get_tensor(n) for n in names}


def _scalars(model_dir, tag_prefix="losses/"):
  """{step: {tag: value}} of the TensorBoard summaries under model_dir/train."""
  found = {}
  for path in glob.glob(os.path.join(model_dir, "train", "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag.startswith(tag_prefix):
          found.setdefault(event.step, {})[value.tag] = float(
              tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
  return found


def test_trainer_trains_checkpoints_and_writes_summaries(runs):
  _ok(runs, "straight")
  model_dir = runs["dirs"]["straight"]
  for step in (2, STEPS):
    assert os.path.exists(os.path.join(model_dir, f"ckpt-{step}.index"))
  losses = _scalars(model_dir)
  assert sorted(losses) == list(range(1, STEPS + 1)), sorted(losses)
  for step, values in losses.items():
    assert TOTAL_LOSS in values, (step, sorted(values))
    assert all(np.isfinite(v) for v in values.values()), (step, values)
  # Training moved the weights between the two checkpoints.
  two, four = _variables(model_dir, 2), _variables(model_dir, STEPS)
  moved = [n for n in two if n.startswith("model/") and not np.array_equal(two[n], four[n])]
  assert len(moved) > len([n for n in two if n.startswith("model/")]) // 2


def test_sigkill_then_resume_equals_uninterrupted(runs):
  """Exact equality: same seed, deterministic ops, input re-seeded from (seed, step)."""
  _ok(runs, "straight")
  out = _ok(runs, "resumed")
  assert f"ckpt-{STEPS}.index" not in runs["victim_files"]
  assert "Restored" in out, out[-3000:]
  expected = _variables(runs["dirs"]["straight"], STEPS)
  actual = _variables(runs["dirs"]["resumed"], STEPS)
  assert set(expected) == set(actual) and len(expected) > 500
  different = [n for n in expected if not np.array_equal(expected[n], actual[n])]
  assert not different, different[:10]


def test_continuous_eval_evaluates_each_new_checkpoint_once_and_stops_at_the_last(runs):
  out = _ok(runs, "evaluator")
  eval_dir = os.path.join(runs["dirs"]["straight"], "eval")
  steps = sorted(int(m.group(1)) for m in (
      re.fullmatch(r"panoptic_quality-(\d+)\.json", name) for name in os.listdir(eval_dir)) if m)
  assert steps and steps[-1] == STEPS, (steps, out[-3000:])
  assert set(steps) <= {0, 2, STEPS}  # trainer.py writes ckpt-0 before the first step
  # Lines of the controller's log, not their copies that absl also prints.
  started = r"controller\.py:\d+\]\s+eval \| step:\s+(\d+) \| running"
  evaluated = [int(s) for s in re.findall(started, out)]
  assert evaluated == steps, (evaluated, steps)  # each once, in order, none after the last
  with open(os.path.join(eval_dir, f"panoptic_quality-{STEPS}.json")) as f:
    assert 0.0 <= json.load(f)["All"]["pq"] <= 1.0


def _relative_to_movement(weights, reference, initial):
  names = [n for n in reference if n.startswith("model/")]
  difference = np.sqrt(sum(float(np.sum((weights[n] - reference[n]) ** 2)) for n in names))
  movement = np.sqrt(sum(float(np.sum((reference[n] - initial[n]) ** 2)) for n in names))
  return difference, movement


def test_gradient_recomputation_trains_like_the_plain_step(runs):
  """Recomputing activations in the backward pass changes memory, not results.

  Tolerance: the recomputed forward is a separate graph that grappler may fuse
  differently, so round-off may differ: losses within 1e-5 relative (measured
  2.0e-6), weights within 1e-4 of how far training moved them (measured 1.6e-6).
  """
  out = _ok(runs, "recompute")
  assert "Recomputing the activations of" in out, out[-3000:]
  reference = _variables(runs["dirs"]["straight"], STEPS)
  weights = _variables(runs["dirs"]["recompute"], STEPS)
  assert set(weights) == set(reference)
  plain, recomputed = _scalars(runs["dirs"]["straight"]), _scalars(runs["dirs"]["recompute"])
  assert sorted(recomputed) == sorted(plain)
  for step in plain:
    for tag, value in plain[step].items():
      assert recomputed[step][tag] == pytest.approx(value, rel=1e-5, abs=1e-6), (step, tag)
  initial = _variables(runs["dirs"]["straight"], 0)
  difference, movement = _relative_to_movement(weights, reference, initial)
  assert movement > 0 and difference <= 1e-4 * movement, (difference, movement)


def test_bfloat16_training_keeps_float32_variables_and_close_losses(runs):
  out = _ok(runs, "bfloat16")
  weights = _variables(runs["dirs"]["bfloat16"], STEPS)
  floats = [v.dtype for v in weights.values() if v.dtype.kind == "f"]
  assert len(floats) > 500 and set(floats) == {np.dtype(np.float32)}
  plain, mixed = _scalars(runs["dirs"]["straight"]), _scalars(runs["dirs"]["bfloat16"])
  assert sorted(mixed) == list(range(1, STEPS + 1)), (sorted(mixed), out[-3000:])
  for step in mixed:
    assert np.isfinite(mixed[step][TOTAL_LOSS])
  # Step 1 starts from the same weights and batch as the float32 run.
  assert mixed[1][TOTAL_LOSS] == pytest.approx(plain[1][TOTAL_LOSS], rel=BFLOAT16_LOSS_RTOL)
