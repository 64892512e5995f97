"""KMaXLoss: parity with DeepLab2's MaXDeepLabLoss on the loss fixture, and API checks.

Reference: deeplab2_parity/loss (README section 4): COCO R50 training-mode
predictions for 2 real images, DeepLab2's loss values for each of the 30 terms
per image and their batch means, DeepLab2's Hungarian matching and the pixel
indices its instance-discrimination sampling drew.

Tolerance: RTOL = 1e-5 relative. Every term is a float32 reduction (over up to
4225 pixels, 4096 sampled pixels or 128 slots) of the same per-element values
DeepLab2 computes; only summation orders differ (we reduce over slots where
DeepLab2 reduces over ground-truth masks padded to 181, and we never build the
4096 x 4096 instance-discrimination target). float32 rounding of such sums is
~1e-7 relative per operation; measured worst case over all 30 terms x 2 images
and batch means: 1.2e-7. 1e-5 leaves margin for other CPUs / kernels and is
far below any real difference (a different matched slot changes terms by >1e-3).
"""
import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import linear_sum_assignment

from kmax_tf import outputs
from kmax_tf.losses import kmax_loss
from kmax_tf.losses.kmax_loss import KMaXLoss

RTOL = 1e-5
MATCHING_DEPENDENT = (kmax_loss.PQ_STYLE_LOSS_CLASS_TERM, kmax_loss.PQ_STYLE_LOSS_MASK_DICE_TERM,
                      kmax_loss.MASK_ID_CROSS_ENTROPY_LOSS, kmax_loss.TOTAL_LOSS)


def _assert_terms_close(ours, per_image, batch_mean, rtol=RTOL):
  assert set(ours) == set(per_image)
  means = KMaXLoss.average_over_batch(ours)
  for name, expected in per_image.items():
    np.testing.assert_allclose(ours[name].numpy(), expected, rtol=rtol, atol=0, err_msg=name)
    np.testing.assert_allclose(means[name].numpy(), batch_mean[name], rtol=rtol, atol=0,
                               err_msg=f"batch mean {name}")


def test_parity_deterministic_variant(loss_fixture, coco_loss):
  """Variant C: instance discrimination without sampling; DeepLab2's matching injected."""
  loss = coco_loss(instance_discrimination_sample_k=0)
  ours = loss(loss_fixture.y_true, loss_fixture.y_pred,
              matched_slot_per_gt_mask=loss_fixture.matching)
  _assert_terms_close(ours, *loss_fixture.results("C_no_sampling_k0"))


def test_parity_replayed_sampling(loss_fixture, coco_loss):
  """Variant R (= A): the config's sampling with DeepLab2's drawn indices replayed."""
  loss = coco_loss()
  ours = loss(loss_fixture.y_true, loss_fixture.y_pred,
              matched_slot_per_gt_mask=loss_fixture.matching,
              instance_discrimination_sample_indices=loss_fixture.sample_indices)
  _assert_terms_close(ours, *loss_fixture.results("R_replay_seed0_indices"))
  _assert_terms_close(ours, *loss_fixture.results("A_sampled_seed0"))


def test_own_optimal_matching_on_fixture(loss_fixture, coco_loss):
  """Our matcher finds the float64 optimum that DeepLab2's float32 matcher misses.

  Terms not depending on the matching still agree; the matching-dependent ones
  differ by the different choice among near-tied slots (README: 16 of 41
  matched weights are below 1e-6 in magnitude).
  """
  loss = coco_loss(instance_discrimination_sample_k=0)
  ours = loss(loss_fixture.y_true, loss_fixture.y_pred)
  per_image, _ = loss_fixture.results("C_no_sampling_k0")
  for name, expected in per_image.items():
    actual = ours[name].numpy()
    if any(name.endswith(k) for k in MATCHING_DEPENDENT):
      # Sanity bound only: measured up to 13% (class terms), <1.5% otherwise.
      np.testing.assert_allclose(actual, expected, rtol=0.25, err_msg=name)
    else:
      np.testing.assert_allclose(actual, expected, rtol=RTOL, err_msg=name)


def test_optimal_matching_cost_beats_deeplab2(loss_fixture):
  """The fixture's matching weights: our matching reaches scipy's optimum."""
  from kmax_tf.losses.hungarian_matcher import hungarian_matching
  weights = loss_fixture.arrays["hungarian/weights"]
  non_void = loss_fixture.arrays["gt_preprocessed/mask_gt_non_void_mask"] > 0
  deeplab2 = loss_fixture.arrays["hungarian/matched_slot_per_gt_mask"]
  ours = hungarian_matching(tf.constant(np.where(non_void[:, :, None], weights, 1.0))).numpy()
  for b in range(2):
    rows = np.flatnonzero(non_void[b])
    costs = weights[b, rows].astype(np.float64)
    row_ind, col_ind = linear_sum_assignment(costs)
    optimum = costs[row_ind, col_ind].sum()
    our_cost = costs[np.arange(len(rows)), ours[b, rows]].sum()
    deeplab2_cost = costs[np.arange(len(rows)), deeplab2[b, rows]].sum()
    # float32 solve: within 4 * rows * 2^-23 * max|cost| of the optimum.
    assert abs(our_cost - optimum) <= 4 * len(rows) * 2.0**-23 * np.abs(costs).max()
    assert our_cost < deeplab2_cost


def _clear_cut_predictions(loss_fixture, num_slots=128):
  """Predictions whose optimal matching is unambiguous: mask k -> slot perm[k]."""
  arrays = loss_fixture.arrays
  loss = KMaXLoss(134, 0, range(1, 81), auxiliary_output_number=0)
  gt = loss_fixture_ground_truth(loss_fixture, loss)
  one_hot = gt.pixel_mask_one_hot.numpy()  # [B, P, M]
  mask_class = gt.mask_class.numpy()
  rng = np.random.RandomState(0)
  perm = np.stack([rng.permutation(num_slots) for _ in range(2)])
  logits = np.full((2, 65 * 65, num_slots), -4.0, np.float32)
  class_logits = rng.randn(2, num_slots, 134).astype(np.float32)
  class_logits[:, :, -1] += 6.0
  expected = np.full(mask_class.shape, -1)
  thing_stuff = list(range(1, 81)) + loss.stuff_class_ids
  for b in range(2):
    for k, m in enumerate(np.flatnonzero(mask_class[b] >= 0)):
      slot = perm[b, k]
      logits[b, one_hot[b, :, m] > 0, slot] = 6.0
      class_logits[b, slot, thing_stuff.index(mask_class[b, m])] += 9.0
      expected[b, m] = slot
  y_pred = {outputs.PIXEL_SPACE_MASK_LOGITS: tf.constant(logits.reshape(2, 65, 65, num_slots)),
            outputs.TRANSFORMER_CLASS_LOGITS: tf.constant(class_logits),
            outputs.PIXEL_SPACE_NORMALIZED_FEATURE: tf.math.l2_normalize(
                tf.constant(rng.randn(2, 65, 65, 16).astype(np.float32)), axis=-1),
            outputs.SEMANTIC_LOGITS: tf.constant(arrays["pred/semantic_logits"])}
  return y_pred, expected


def loss_fixture_ground_truth(loss_fixture, loss):
  from kmax_tf.losses.mask_ground_truth import MaskGroundTruth
  y_true = loss_fixture.y_true
  return MaskGroundTruth.from_targets(
      y_true[kmax_loss.GT_SEMANTIC], y_true[kmax_loss.GT_THING_ID_MASK],
      y_true[kmax_loss.GT_THING_ID_CLASS], (65, 65), loss.ignore_label,
      loss.thing_class_ids, loss.stuff_class_ids)


def test_own_matching_equals_injected_when_unambiguous(loss_fixture):
  from kmax_tf.losses.matched_targets import MatchedTargets
  y_pred, expected = _clear_cut_predictions(loss_fixture)
  loss = KMaXLoss(134, 0, range(1, 81), auxiliary_output_number=0)
  gt = loss_fixture_ground_truth(loss_fixture, loss)
  targets = MatchedTargets.from_prediction(
      gt, tf.reshape(y_pred[outputs.PIXEL_SPACE_MASK_LOGITS], [2, -1, 128]),
      y_pred[outputs.TRANSFORMER_CLASS_LOGITS])
  np.testing.assert_array_equal(targets.slot_of_mask.numpy(), expected)
  own = loss(loss_fixture.y_true, y_pred)
  injected = loss(loss_fixture.y_true, y_pred, matched_slot_per_gt_mask=tf.constant(expected))
  for name in own:
    np.testing.assert_array_equal(own[name].numpy(), injected[name].numpy(), err_msg=name)


def test_random_sampling_close_to_deeplab2(loss_fixture, coco_loss):
  """Fresh random samples: DeepLab2's seeds 0 and 1 differ by <2e-5 relative."""
  tf.random.set_seed(0)
  ours = coco_loss()(loss_fixture.y_true, loss_fixture.y_pred,
                     matched_slot_per_gt_mask=loss_fixture.matching)
  per_image, _ = loss_fixture.results("A_sampled_seed0")
  for name, expected in per_image.items():
    np.testing.assert_allclose(ours[name].numpy(), expected, rtol=1e-3, err_msg=name)


def test_semantic_sampling_option(loss_fixture, coco_loss):
  """semantic_sample_k is opt-in; sampling every pixel reproduces the default."""
  default = coco_loss(instance_discrimination_sample_k=0)(
      loss_fixture.y_true, loss_fixture.y_pred, matched_slot_per_gt_mask=loss_fixture.matching)
  # 500 pixels: with 4096 of 4225 every non-void pixel would be drawn.
  loss = coco_loss(semantic_sample_k=500, semantic_sample_temperature=2.0,
                   instance_discrimination_sample_k=0)
  every_pixel = tf.tile(tf.range(65 * 65)[None], [2, 1])
  resampled = loss(loss_fixture.y_true, loss_fixture.y_pred,
                   matched_slot_per_gt_mask=loss_fixture.matching,
                   semantic_sample_indices=tf.reverse(every_pixel, [1]))
  np.testing.assert_allclose(resampled[kmax_loss.SEMANTIC_LOSS].numpy(),
                             default[kmax_loss.SEMANTIC_LOSS].numpy(), rtol=RTOL)
  sampled = loss(loss_fixture.y_true, loss_fixture.y_pred,
                 matched_slot_per_gt_mask=loss_fixture.matching)
  assert np.all(np.isfinite(sampled[kmax_loss.SEMANTIC_LOSS].numpy()))
  assert not np.allclose(sampled[kmax_loss.SEMANTIC_LOSS].numpy(),
                         default[kmax_loss.SEMANTIC_LOSS].numpy(), rtol=1e-4)


def _small_case(batch=2, size=9, slots=12, classes=7, things=(1, 2, 3), max_things=6, seed=0,
                auxiliary=2):
  """A small random batch (labels at 2x the output resolution) with auxiliary heads."""
  rng = np.random.RandomState(seed)
  full = 2 * size - 1
  semantic = rng.randint(0, classes, (batch, full, full)).astype(np.int32)
  thing_mask = np.full_like(semantic, -1)
  thing_class = np.full((batch, max_things), -1, np.float32)
  for b in range(batch):
    for t in range(4):
      y, x = rng.randint(0, full - 5, 2)
      cls = things[t % len(things)]
      semantic[b, y:y + 5, x:x + 5] = cls
      thing_mask[b, y:y + 5, x:x + 5] = t
      thing_class[b, t] = cls
    thing_mask[b][~np.isin(semantic[b], things)] = -1
  y_true = {kmax_loss.GT_SEMANTIC: semantic, kmax_loss.GT_SEMANTIC_LOSS_WEIGHT:
            np.ones_like(semantic, np.float32), kmax_loss.GT_THING_ID_MASK: thing_mask,
            kmax_loss.GT_THING_ID_CLASS: thing_class}

  def head():
    return {outputs.PIXEL_SPACE_MASK_LOGITS: rng.randn(batch, size, size, slots).astype(np.float32),
            outputs.TRANSFORMER_CLASS_LOGITS: rng.randn(batch, slots, classes).astype(np.float32),
            outputs.PIXEL_SPACE_NORMALIZED_FEATURE: (
                rng.randn(batch, size, size, 8) / np.sqrt(8)).astype(np.float32)}

  y_pred = head()
  y_pred[outputs.SEMANTIC_LOGITS] = rng.randn(batch, size, size, classes).astype(np.float32)
  y_pred[outputs.AUXILIARY_OUTPUTS] = tuple(head() for _ in range(auxiliary))
  loss = KMaXLoss(num_classes=classes, ignore_label=0, thing_class_ids=things,
                  instance_discrimination_sample_k=50, auxiliary_output_number=auxiliary)
  return loss, tf.nest.map_structure(tf.constant, y_true), tf.nest.map_structure(tf.constant, y_pred)


def test_xla_and_graph_match_eager():
  # One auxiliary head keeps the XLA compilation short; deep supervision
  # repeats the same ops per head.
  loss, y_true, y_pred = _small_case(auxiliary=1)
  indices = [tf.constant(np.random.RandomState(i).permutation(81)[:50][None].repeat(2, 0))
             for i in range(2)]
  eager = loss(y_true, y_pred, instance_discrimination_sample_indices=indices)
  graph = tf.function(lambda t, p: loss(t, p, instance_discrimination_sample_indices=indices))
  xla = tf.function(lambda t, p: loss(t, p, instance_discrimination_sample_indices=indices),
                    jit_compile=True)
  for other in (graph(y_true, y_pred), xla(y_true, y_pred)):
    for name in eager:
      np.testing.assert_allclose(other[name].numpy(), eager[name].numpy(), rtol=1e-5,
                                 err_msg=name)


def test_dynamic_batch_and_gradients():
  loss, y_true, y_pred = _small_case()
  spec = tf.nest.map_structure(lambda t: tf.TensorSpec([None] + t.shape[1:], t.dtype),
                               (y_true, y_pred))

  @tf.function(input_signature=spec)
  def step(y_true, y_pred):
    with tf.GradientTape() as tape:
      tape.watch(y_pred)
      total = tf.reduce_mean(loss(y_true, y_pred)[kmax_loss.TOTAL_LOSS])
    return total, tape.gradient(total, y_pred)

  total, grads = step(y_true, y_pred)
  assert np.isfinite(total.numpy())
  for path, grad in zip(tf.nest.flatten(y_pred), tf.nest.flatten(grads)):
    del path
    assert grad is not None and np.all(np.isfinite(grad.numpy()))
    assert np.abs(grad.numpy()).max() > 0


def test_reduced_precision_predictions():
  loss, y_true, y_pred = _small_case()
  indices = [tf.tile(tf.range(50)[None], [2, 1])] * 3
  full = loss(y_true, y_pred, instance_discrimination_sample_indices=indices)
  half = loss(y_true, tf.nest.map_structure(lambda t: tf.cast(t, tf.bfloat16), y_pred),
              instance_discrimination_sample_indices=indices)
  for name in full:
    assert half[name].dtype == tf.float32
    np.testing.assert_allclose(half[name].numpy(), full[name].numpy(), rtol=0.05, atol=1e-3)


def test_get_config_round_trip():
  loss, y_true, y_pred = _small_case()
  clone = KMaXLoss.from_config(loss.get_config())
  assert clone.get_config() == loss.get_config()
  indices = [tf.tile(tf.range(50)[None], [2, 1])] * 3
  a = loss(y_true, y_pred, instance_discrimination_sample_indices=indices)
  b = clone(y_true, y_pred, instance_discrimination_sample_indices=indices)
  for name in a:
    np.testing.assert_array_equal(a[name].numpy(), b[name].numpy())


def test_term_selection_and_names():
  loss, y_true, y_pred = _small_case()
  assert list(loss(y_true, y_pred)) == loss.loss_names
  assert len(loss.loss_names) == 4 + 4 * 2 + 2
  only = KMaXLoss(7, 0, (1, 2, 3), pq_style_loss_weight=0.0, mask_id_cross_entropy_loss_weight=0.0,
                  semantic_loss_weight=0.0, auxiliary_output_number=2)
  assert only.loss_names == [kmax_loss.INSTANCE_DISCRIMINATION_LOSS,
                             "aux_0" + kmax_loss.INSTANCE_DISCRIMINATION_LOSS,
                             "aux_1" + kmax_loss.INSTANCE_DISCRIMINATION_LOSS,
                             kmax_loss.TOTAL_LOSS]
  result = only(y_true, y_pred)
  np.testing.assert_allclose(result[kmax_loss.TOTAL_LOSS].numpy(),
                             sum(result[k].numpy() for k in only.loss_names[:-1]), rtol=1e-6)


def test_input_errors():
  loss, y_true, y_pred = _small_case()
  with pytest.raises(ValueError, match="auxiliary outputs"):
    loss(y_true, dict(y_pred, **{outputs.AUXILIARY_OUTPUTS: y_pred[outputs.AUXILIARY_OUTPUTS][:1]}))
  native = dict(y_pred[outputs.AUXILIARY_OUTPUTS][0])
  native[outputs.PIXEL_SPACE_MASK_LOGITS] = native[outputs.PIXEL_SPACE_MASK_LOGITS][:, ::2, ::2]
  with pytest.raises(ValueError, match="main output size 9x9"):
    loss(y_true, dict(y_pred, **{outputs.AUXILIARY_OUTPUTS: (
        native, y_pred[outputs.AUXILIARY_OUTPUTS][1])}))
  wrong_classes = KMaXLoss(8, 0, (1, 2, 3), auxiliary_output_number=2)
  with pytest.raises(ValueError, match="transformer_class_logits has 7 channels"):
    wrong_classes(y_true, y_pred)


def test_loss_and_matcher_are_not_autograph_converted(monkeypatch):
  """Inside a tf.function with AutoGraph on, the loss terms and the matcher run unconverted.

  Their loops are tf.while_loop; converting ~20 functions only cost trace time.
  The spies record the AutoGraph status each function sees.
  """
  from tensorflow.python.autograph.core import ag_ctx  # pylint: disable=g-import-not-at-top
  from kmax_tf.losses import hungarian_matcher  # pylint: disable=g-import-not-at-top
  seen = {}

  def spy(name, fn):
    def wrapped(*args, **kwargs):
      seen[name] = ag_ctx.control_status_ctx().status
      return fn(*args, **kwargs)
    return wrapped

  monkeypatch.setattr(kmax_loss, "pq_style_mask_dice_term",
                      spy("dice", kmax_loss.pq_style_mask_dice_term))
  monkeypatch.setattr(kmax_loss, "semantic_loss", spy("semantic", kmax_loss.semantic_loss))
  # Called inside the matcher's while loop, at trace time (a new matrix shape below).
  monkeypatch.setattr(hungarian_matcher, "_augment",
                      spy("matcher", hungarian_matcher._augment))  # pylint: disable=protected-access
  # 11 slots: a matrix shape no other test traces the matcher with, so it is traced here.
  loss, y_true, y_pred = _small_case(slots=11, auxiliary=1)

  @tf.function
  def total(t, p):
    if tf.reduce_sum(p[outputs.SEMANTIC_LOGITS]) > 1e9:  # a tensor `if`: AutoGraph is on here
      p = dict(p)
    return loss(t, p)[kmax_loss.TOTAL_LOSS]

  total(y_true, y_pred)
  assert seen == {name: ag_ctx.Status.DISABLED for name in ("dice", "semantic", "matcher")}
