"""In-graph optimal linear assignment (Hungarian matching) for batches of costs.

MaX-DeepLab (Wang et al., CVPR 2021) and kMaX-DeepLab
match predicted masks to ground-truth masks by a minimum-cost one-to-one
assignment before computing the PQ-style loss.

The solver is the shortest augmenting path method (Kuhn 1955, Munkres 1957;
Jonker & Volgenant 1987), in the form of Crouse, "On implementing 2D
rectangular assignment algorithms", IEEE TAES 2016 (the algorithm behind
scipy.optimize.linear_sum_assignment): a row reduction and a greedy assignment
on zero reduced costs, then one Dijkstra search per still unassigned row over
reduced costs, followed by a dual update and an augmentation along the found
path. Dual feasibility is kept throughout, so the result is an exact optimum
(up to the rounding of the cost dtype; integer-valued costs are solved exactly).

Everything is plain TensorFlow with static shapes (while loops with iteration
bounds, gathers, scatters), so it runs inside tf.function, under XLA
(jit_compile=True) and on TPU. The batch is solved in lock step: every loop
keeps going while any batch element still has work and masks the others.

Why not tf-models-official's `official.projects.detr.ops.matchers` (DETR's and
DeepLab2's TF Hungarian method): it also finds scipy's optimum (every random
and tied 10x10 and 128x128 case we tried, and 128 slots x 5 or 40 ground-truth
masks padded to 128 rows) and compiles with jit_compile=True, but it takes
square matrices only (rectangular ones raise InvalidArgumentError) and is many
times slower on kMaX's 128 x 128 costs, as a graph and under XLA
(benchmarks/matcher.py, BENCHMARKS.md). tests/test_model_garden_equivalents.py checks its optimality and
its square-only input.
"""
import tensorflow as tf


def hungarian_matching(costs: tf.Tensor) -> tf.Tensor:
  """Minimum-cost assignment of every row of each [R, C] cost matrix.

  Args:
    costs: [batch, R, C] float tensor with static R and C. Rectangular
      matrices of both orientations are supported. Non-finite entries are
      replaced by +-(2 max|finite cost| + 1) (NaN counts as +). Gradients do
      not flow through the matching.

  Returns:
    row_to_col: [batch, R] int32, the column assigned to each row. When
      R > C exactly C rows are assigned and the others get -1; otherwise every
      row gets a distinct column. The total cost is minimal.
  """
  costs = tf.stop_gradient(tf.convert_to_tensor(costs))
  if costs.shape.rank != 3 or None in costs.shape.as_list()[1:]:
    raise ValueError(f"costs must be [batch, R, C] with static R, C; got {costs.shape}")
  if not costs.dtype.is_floating:
    costs = tf.cast(costs, tf.float32)
  num_rows, num_cols = costs.shape.as_list()[1:]
  if num_rows == 0 or num_cols == 0:
    return tf.fill([tf.shape(costs)[0], num_rows], -1)
  # Non-finite costs (e.g. from NaN logits) would stall the search; treat NaN
  # and +inf as dearer, -inf as cheaper, than every finite cost.
  finite = tf.math.is_finite(costs)
  big = 2.0 * tf.reduce_max(tf.where(finite, tf.abs(costs), 0.0), axis=[1, 2], keepdims=True) + 1.0
  costs = tf.where(finite, costs, tf.where(costs < 0, -big, big))
  if num_rows <= num_cols:
    row_to_col, _ = _solve_wide(costs)
    return row_to_col
  # The solver assigns every row of a wide matrix; for a tall one every column
  # is assigned, so we solve the transpose and read the assignment backwards.
  _, col_to_row = _solve_wide(tf.transpose(costs, [0, 2, 1]))
  return col_to_row


# Compiled with XLA whatever the caller does: the loops run ~30x faster than
# as TF graph while-loops (measured on CPU, 256 x 256) and eager callers get
# one compiled call instead of op-by-op execution. Its loops are tf.while_loop,
# so AutoGraph has nothing to convert (skipping it saves ~0.7 s per trace).
@tf.function(jit_compile=True, autograph=False)
def _solve_wide(costs):
  """Solves [B, n, m] with n <= m; returns (row_to_col [B, n], col_to_row [B, m])."""
  num_rows, num_cols = costs.shape.as_list()[1:]
  batch = tf.shape(costs)[0]
  dtype = costs.dtype
  row_ids = tf.range(num_rows, dtype=tf.int32)
  col_ids = tf.range(num_cols, dtype=tf.int32)

  # Row reduction: u_i = min_j c_ij, v = 0 is dual feasible, and v = 0 on every
  # column is what optimality needs for columns that stay unassigned (n < m).
  row_potential = tf.reduce_min(costs, axis=2)
  col_potential = tf.zeros([batch, num_cols], dtype)
  # Greedy start: each row proposes its first zero-reduced-cost column and the
  # lowest proposing row wins it.
  proposal = tf.argmin(costs, axis=2, output_type=tf.int32)
  proposes = tf.equal(proposal[:, :, None], col_ids[None, None, :])
  first_proposer = tf.argmax(tf.cast(proposes, tf.int32), axis=1, output_type=tf.int32)
  has_proposer = tf.reduce_any(proposes, axis=1)
  col_to_row = tf.where(has_proposer, first_proposer, -1)
  won = tf.equal(tf.gather(col_to_row, proposal, batch_dims=1), row_ids[None, :])
  row_to_col = tf.where(won, proposal, -1)

  def has_free_row(row_to_col, *unused):
    return tf.reduce_any(row_to_col < 0)

  def augment_one_row(row_to_col, col_to_row, row_potential, col_potential):
    free = row_to_col < 0
    active = tf.reduce_any(free, axis=1)
    start_row = tf.argmax(tf.cast(free, tf.int32), axis=1, output_type=tf.int32)
    sink, path, dist, min_dist, in_tree_row, in_tree_col = _shortest_augmenting_path(
        costs, row_to_col, col_to_row, row_potential, col_potential, start_row, active)

    # Dual update keeping reduced costs >= 0 and = 0 on the new matching.
    dist_of_row_col = tf.gather(dist, tf.maximum(row_to_col, 0), batch_dims=1)
    is_start = tf.equal(row_ids[None, :], start_row[:, None]) & active[:, None]
    row_potential += tf.where(is_start, min_dist[:, None],
                              tf.where(in_tree_row, min_dist[:, None] - dist_of_row_col, 0.0))
    col_potential -= tf.where(in_tree_col, min_dist[:, None] - dist, 0.0)

    row_to_col, col_to_row = _augment(row_to_col, col_to_row, path, sink, start_row, active)
    return row_to_col, col_to_row, row_potential, col_potential

  row_to_col, col_to_row, _, _ = tf.while_loop(
      has_free_row, augment_one_row,
      (row_to_col, col_to_row, row_potential, col_potential),
      maximum_iterations=num_rows)
  return row_to_col, col_to_row


def _shortest_augmenting_path(costs, row_to_col, col_to_row, row_potential,
                              col_potential, start_row, active):
  """Dijkstra over reduced costs from `start_row` to the nearest free column."""
  num_rows, num_cols = costs.shape.as_list()[1:]
  batch = tf.shape(costs)[0]
  dtype = costs.dtype
  inf = tf.constant(float("inf"), dtype)
  row_ids = tf.range(num_rows, dtype=tf.int32)
  free_col = col_to_row < 0

  def searching(sink, *unused):
    return tf.reduce_any(sink < 0)

  def step(sink, row, path, dist, min_dist, in_tree_row, in_tree_col):
    on = sink < 0
    in_tree_row = in_tree_row | (tf.equal(row_ids[None, :], row[:, None]) & on[:, None])
    row_cost = tf.gather(costs, row, batch_dims=1)
    row_u = tf.gather(row_potential, row, batch_dims=1)
    reduced = min_dist[:, None] + row_cost - row_u[:, None] - col_potential
    better = on[:, None] & ~in_tree_col & (reduced < dist)
    path = tf.where(better, row[:, None], path)
    dist = tf.where(better, reduced, dist)
    open_dist = tf.where(in_tree_col, inf, dist)
    lowest = tf.reduce_min(open_dist, axis=1)
    # Among the nearest open columns prefer a free one (ends the search early);
    # closed columns rank last so a column is never visited twice.
    nearest = tf.equal(open_dist, lowest[:, None])
    rank = tf.where(in_tree_col, 3, tf.where(nearest, tf.where(free_col, 0, 1), 2))
    col = tf.argmin(rank, axis=1, output_type=tf.int32)
    col_is_free = tf.gather(free_col, col, batch_dims=1)
    min_dist = tf.where(on, lowest, min_dist)
    sink = tf.where(on & col_is_free, col, sink)
    row = tf.where(on & ~col_is_free, tf.gather(col_to_row, col, batch_dims=1), row)
    in_tree_col = in_tree_col | (tf.one_hot(col, num_cols, on_value=True, off_value=False,
                                            dtype=tf.bool) & on[:, None])
    return sink, row, path, dist, min_dist, in_tree_row, in_tree_col

  init = (tf.where(active, -1, 0),                # sink (inactive: already done)
          start_row,
          tf.fill([batch, num_cols], -1),          # path: row preceding each column
          tf.fill([batch, num_cols], inf),         # shortest reduced distance
          tf.zeros([batch], dtype),                # distance of the last closed column
          tf.zeros([batch, num_rows], tf.bool),
          tf.zeros([batch, num_cols], tf.bool))
  sink, _, path, dist, min_dist, in_tree_row, in_tree_col = tf.while_loop(
      searching, step, init, maximum_iterations=num_cols)
  return sink, path, dist, min_dist, in_tree_row, in_tree_col


def _augment(row_to_col, col_to_row, path, sink, start_row, active):
  """Flips the matching along the path from `sink` back to `start_row`."""
  num_cols = col_to_row.shape[1]

  def walking(col, unused_row_to_col, unused_col_to_row, on):
    return tf.reduce_any(on)

  def step(col, row_to_col, col_to_row, on):
    # Finished batch elements rewrite their current values (indices clamped).
    col = tf.maximum(col, 0)
    row = tf.maximum(tf.gather(path, col, batch_dims=1), 0)
    previous_col = tf.gather(row_to_col, row, batch_dims=1)
    batch_ids = tf.range(tf.shape(col)[0], dtype=tf.int32)
    col_to_row = tf.tensor_scatter_nd_update(
        col_to_row, tf.stack([batch_ids, col], 1),
        tf.where(on, row, tf.gather(col_to_row, col, batch_dims=1)))
    row_to_col = tf.tensor_scatter_nd_update(
        row_to_col, tf.stack([batch_ids, row], 1), tf.where(on, col, previous_col))
    on = on & tf.not_equal(row, start_row)
    return previous_col, row_to_col, col_to_row, on

  _, row_to_col, col_to_row, _ = tf.while_loop(
      walking, step, (sink, row_to_col, col_to_row, active),
      maximum_iterations=num_cols)
  return row_to_col, col_to_row
