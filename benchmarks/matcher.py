r"""Hungarian matching: kmax_tf's solver beside tf-models-official's, on square costs.

  python benchmarks/matcher.py [--batch=2] [--size=128] [--repeats=5] \
      [--output_json=benchmarks/results/matcher.json]

Times kmax_tf.losses.hungarian_matcher.hungarian_matching against
tf-models-official's official.projects.detr.ops.matchers.hungarian_matching
(DETR's and DeepLab2's TF Hungarian method; square matrices only) on one batch
of --batch uniform random [--size, --size] float32 cost matrices (seed 0),
kMaX-DeepLab's 128 mask slots x 128 padded ground-truth masks by default. Each
solver runs in a tf.function graph and in a tf.function with jit_compile=True
(XLA). The first call of each (tracing, and XLA compilation) is timed on its
own; then --repeats rounds run all four once each (the order reverses every
round, so all see the same machine load), and the median and minimum per case
are reported, each call including the copy of its result to NumPy. Both
solvers' total costs are checked against scipy.optimize.linear_sum_assignment.
The ratio is kmax_tf / library median time in the same mode and run.
"""
import importlib.metadata
import os
import statistics
import sys
import time

from absl import flags
import numpy as np

from kmax_tf import cli

import deeplab2_beside  # the script's own directory is on sys.path; machine_record()

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MODES = {"graph": False, "xla": True}

_FLAGS = flags.FlagValues()
flags.DEFINE_integer("batch", 2, "Cost matrices per call.", flag_values=_FLAGS)
flags.DEFINE_integer("size", 128, "Side of each square cost matrix.", flag_values=_FLAGS)
flags.DEFINE_integer("repeats", 5, "Timed rounds after the first call.", flag_values=_FLAGS)
flags.DEFINE_string("output_json", os.path.join(_ROOT, "benchmarks", "results", "matcher.json"),
                    "JSON file to write.", flag_values=_FLAGS)


def _solvers():
  """name -> function from a [batch, n, n] cost tensor to [batch, n] int32 row -> column."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from kmax_tf.losses import hungarian_matcher  # pylint: disable=g-import-not-at-top
  from official.projects.detr.ops import matchers  # pylint: disable=g-import-not-at-top

  def library(costs):
    result = matchers.hungarian_matching(costs)
    # (cost, assignment) in the installed release; the docstring's bool matrix otherwise.
    assignment = result[1] if isinstance(result, (tuple, list)) else result
    return tf.argmax(tf.cast(assignment, tf.int32), axis=2, output_type=tf.int32)

  return {"kmax_tf": hungarian_matcher.hungarian_matching, "tf-models-official": library}


def _gaps_to_optimum(costs, rows_to_cols):
  """Per matrix: total cost of the assignment minus scipy's optimum (float64 sums)."""
  from scipy.optimize import linear_sum_assignment  # pylint: disable=g-import-not-at-top
  gaps = []
  for matrix, cols in zip(costs.astype(np.float64), rows_to_cols):
    if sorted(cols.tolist()) != list(range(matrix.shape[1])):
      gaps.append(float("inf"))  # not a permutation
      continue
    rows, optimal_cols = linear_sum_assignment(matrix)
    gaps.append(float(matrix[np.arange(len(cols)), cols].sum() - matrix[rows, optimal_cols].sum()))
  return gaps


def _benchmark(args: flags.FlagValues) -> int:
  if min(args.batch, args.size, args.repeats) < 1:
    raise cli.UsageError("--batch, --size and --repeats must be positive")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  machine = deeplab2_beside.machine_record()
  costs_np = np.random.default_rng(0).random((args.batch, args.size, args.size), np.float32)
  costs = tf.constant(costs_np)
  functions = {(name, mode): tf.function(solve, jit_compile=jit)
               for name, solve in _solvers().items() for mode, jit in _MODES.items()}
  load_before = os.getloadavg()[0]

  def call(fn):
    start = time.perf_counter()
    out = fn(costs).numpy()
    return time.perf_counter() - start, out

  first_call, gaps = {}, {}
  for (name, mode), fn in functions.items():
    seconds, rows_to_cols = call(fn)
    first_call[f"{name}/{mode}"] = seconds
    gaps[f"{name}/{mode}"] = _gaps_to_optimum(costs_np, rows_to_cols)
    print(f"first call {name}/{mode}: {seconds:.3f} s", flush=True)
  times = {f"{name}/{mode}": [] for name, mode in functions}
  order = list(functions)
  for round_index in range(args.repeats):
    for name, mode in (order if round_index % 2 == 0 else order[::-1]):
      seconds, _ = call(functions[name, mode])
      times[f"{name}/{mode}"].append(seconds)
  median = {k: statistics.median(v) for k, v in times.items()}
  # Same total cost as scipy: equal up to float64 rounding of the float32 costs.
  tolerance = 1e-9 * args.size
  optimal = {k: all(abs(g) <= tolerance for g in v) for k, v in gaps.items()}
  ratio = {mode: median[f"kmax_tf/{mode}"] / median[f"tf-models-official/{mode}"]
           for mode in _MODES}
  result = {
      "costs": f"{args.batch} x uniform[0, 1) float32 {args.size}x{args.size}, seed 0",
      "batch": args.batch, "size": args.size, "repeats": args.repeats,
      "tf_version": tf.__version__,
      "tf_models_official_version": importlib.metadata.version("tf-models-official"),
      "first_call_s": first_call, "median_s": median,
      "min_s": {k: min(v) for k, v in times.items()}, "times_s": times,
      "ratio_kmax_tf_to_library": ratio,
      "gap_to_scipy_optimum": gaps, "same_total_cost_as_scipy": optimal,
      "load_average_1m_before": load_before, "load_average_1m_after": os.getloadavg()[0],
      "machine": machine}
  print(f"{args.batch} x {args.size}x{args.size} uniform float32 costs, {args.repeats} rounds; "
        f"{machine['cpu_model']}, {machine['cpu_count']} cores; {machine['kernel_mode']}; "
        f"TF {tf.__version__}")
  print(f"{'solver':<30s} {'first call s':>12s} {'median s':>10s} {'min s':>10s} "
        f"{'optimal':>8s}")
  for key in times:
    print(f"{key:<30s} {first_call[key]:12.3f} {median[key]:10.4f} {result['min_s'][key]:10.4f} "
          f"{str(optimal[key]):>8s}")
  for mode in _MODES:
    print(f"{mode}: median kmax_tf / tf-models-official = {ratio[mode]:.4f} "
          f"(tf-models-official / kmax_tf = {1 / ratio[mode]:.1f}x)")
  print(f"1-minute load average {load_before:.2f} before, "
        f"{result['load_average_1m_after']:.2f} after")
  deeplab2_beside.write_json(args.output_json, result)
  print(f"wrote {args.output_json}")
  return 0 if all(optimal.values()) else 1


main = cli.command(_FLAGS, _benchmark, __doc__)


if __name__ == "__main__":
  sys.exit(main())
