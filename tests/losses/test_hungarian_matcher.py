"""hungarian_matching against scipy.optimize.linear_sum_assignment.

Every case checks that the result is a valid assignment (min(R, C) rows, each
with a distinct column) and that its total cost equals scipy's optimum, computed
in float64 on the same float32 values:
- integer-valued costs (all tie-heavy kinds): exactly equal (float32 sums and
  differences of small integers are exact, so the solver is exact);
- real-valued costs: |ours - optimum| <= 4 * min(R, C) * 2^-23 * max|cost|,
  a float32 rounding allowance for a path of min(R, C) augmentations (the
  measured difference is 0 on every random case below and 8.5e-8 on the
  DeepLab2 fixture's near-tied weights, see test_kmax_loss.py).
"""
import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import linear_sum_assignment

from kmax_tf.losses.hungarian_matcher import hungarian_matching

# Generators of one [R, C] float32 matrix; the integer kinds are tie-heavy.
KINDS = {
    "uniform": lambda rng, shape: rng.rand(*shape),
    "ints_0_2": lambda rng, shape: rng.randint(0, 3, shape),
    "ints_0_1": lambda rng, shape: rng.randint(0, 2, shape),
    "ints_0_99": lambda rng, shape: rng.randint(0, 100, shape),
    "constant": lambda rng, shape: np.full(shape, 3.0),
    # Product costs force long augmenting paths (every row prefers column 0).
    "row_times_col": lambda rng, shape: np.outer(np.arange(shape[0]), np.arange(shape[1])),
    # Many tiny negative costs, like -dice * p(class) of a random network.
    "tiny_negative": lambda rng, shape: -rng.rand(*shape) ** 8,
    "wide_range": lambda rng, shape: rng.randn(*shape) * 1e3,
}
INTEGER_KINDS = ("ints_0_2", "ints_0_1", "ints_0_99", "constant", "row_times_col")
# Each shape costs one XLA compilation (~1-2 s); more sizes run with --run-large.
SHAPES = [(1, 1), (1, 7), (7, 1), (3, 2), (17, 40), (40, 17), (100, 100), (128, 181),
          (181, 128), (200, 256), (256, 200), (256, 256)]


def _check(costs, assignment, kinds):
  """Asserts validity and optimality for each matrix of the batch."""
  num_rows, num_cols = costs.shape[1:]
  for matrix, rows_to_cols, kind in zip(costs.astype(np.float64), assignment, kinds):
    rows = np.flatnonzero(rows_to_cols >= 0)
    cols = rows_to_cols[rows]
    assert len(rows) == min(num_rows, num_cols), kind
    assert len(np.unique(cols)) == len(cols) and cols.max() < num_cols, kind
    row_ind, col_ind = linear_sum_assignment(matrix)
    optimum = matrix[row_ind, col_ind].sum()
    ours = matrix[rows, cols].sum()
    if kind in INTEGER_KINDS:
      assert ours == optimum, (kind, ours, optimum)
    else:
      bound = 4 * min(num_rows, num_cols) * 2.0**-23 * np.abs(matrix).max()
      assert abs(ours - optimum) <= bound, (kind, ours, optimum)


def _random_batch(shape, seed, repeats=2):
  """All kinds, `repeats` matrices each, as one [batch, R, C] float32 batch."""
  rng = np.random.RandomState(seed)
  kinds = [k for k in KINDS for _ in range(repeats)]
  costs = np.stack([KINDS[k](rng, shape) for k in kinds]).astype(np.float32)
  return costs, kinds


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_matches_scipy(shape):
  costs, kinds = _random_batch(shape, seed=shape[0] * 1000 + shape[1])
  assignment = tf.function(hungarian_matching)(tf.constant(costs)).numpy()
  _check(costs, assignment, kinds)


@pytest.mark.large
def test_many_random_sizes():
  """60 random sizes up to 256 x 256 in both orientations (one compilation each)."""
  rng = np.random.RandomState(123)
  for trial in range(60):
    shape = tuple(rng.randint(1, 257, 2))
    costs, kinds = _random_batch(shape, seed=trial, repeats=1)
    _check(costs, tf.function(hungarian_matching)(tf.constant(costs)).numpy(), kinds)


def test_xla_compiles_and_matches():
  costs, kinds = _random_batch((30, 45), seed=3)
  xla = tf.function(hungarian_matching, jit_compile=True)
  for matrices in (costs, costs.transpose(0, 2, 1).copy()):
    ours = xla(tf.constant(matrices)).numpy()
    _check(matrices, ours, kinds)
    np.testing.assert_array_equal(
        ours, tf.function(hungarian_matching)(tf.constant(matrices)).numpy())


def test_float64_is_exact():
  costs, kinds = _random_batch((50, 70), seed=5)
  costs = costs.astype(np.float64) + 1e-9 * np.random.RandomState(0).rand(*costs.shape)
  ours = hungarian_matching(tf.constant(costs)).numpy()
  for matrix, rows_to_cols in zip(costs, ours):
    row_ind, col_ind = linear_sum_assignment(matrix)
    assert abs(matrix[np.arange(50), rows_to_cols].sum() - matrix[row_ind, col_ind].sum()) < 1e-9


def test_unknown_batch_size():
  matcher = tf.function(hungarian_matching,
                        input_signature=[tf.TensorSpec([None, 6, 9], tf.float32)])
  for batch in (1, 3):
    costs, _ = _random_batch((6, 9), seed=batch)
    costs = costs[:batch]
    _check(costs, matcher(tf.constant(costs)).numpy(), ["uniform", "uniform", "ints_0_2"])


def test_non_finite_costs():
  """Garbage in (e.g. NaN logits) still ends with a valid assignment; inf = forbidden."""
  costs = np.random.RandomState(0).rand(3, 20, 30).astype(np.float32)
  costs[0, 3:9, :] = np.nan
  costs[1, :, 5] = np.inf
  costs[2, 4, 7] = -np.inf
  assignment = hungarian_matching(tf.constant(costs)).numpy()
  for rows_to_cols in assignment:
    assert np.all(rows_to_cols >= 0) and len(np.unique(rows_to_cols)) == 20
  assert 5 not in assignment[1] and assignment[2, 4] == 7
  finite = np.where(np.isfinite(costs[1]), costs[1], 1e6).astype(np.float64)
  _check(finite[None], assignment[1:2], ["uniform"])


def test_rejects_dynamic_matrix_size():
  matcher = tf.function(hungarian_matching,
                        input_signature=[tf.TensorSpec([2, None, 5], tf.float32)])
  with pytest.raises(ValueError, match="static"):
    matcher.get_concrete_function()
