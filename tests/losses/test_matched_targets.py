"""MatchedTargets: matching costs vs DeepLab2's Hungarian weights, and target rules."""
import numpy as np
import tensorflow as tf

from kmax_tf.losses import kmax_loss
from kmax_tf.losses.mask_ground_truth import MaskGroundTruth
from kmax_tf.losses.matched_targets import MatchedTargets

COCO_THINGS = list(range(1, 81))
COCO_STUFF = list(range(81, 134))


def _fixture_targets(loss_fixture, matching=None):
  y_true, y_pred = loss_fixture.y_true, loss_fixture.y_pred
  gt = MaskGroundTruth.from_targets(
      y_true[kmax_loss.GT_SEMANTIC], y_true[kmax_loss.GT_THING_ID_MASK],
      y_true[kmax_loss.GT_THING_ID_CLASS], (65, 65), 0, COCO_THINGS, COCO_STUFF)
  targets = MatchedTargets.from_prediction(
      gt, tf.reshape(y_pred["pixel_space_mask_logits"], [2, -1, 128]),
      y_pred["transformer_class_logits"], matching)
  return gt, targets


def test_matching_costs_equal_deeplab2_weights(loss_fixture):
  """Same ops as DeepLab2 on the same inputs: measured bit-exact; 1e-7 allows kernel changes."""
  _, targets = _fixture_targets(loss_fixture)
  weights = loss_fixture.arrays["hungarian/weights"]
  non_void = loss_fixture.arrays["gt_preprocessed/mask_gt_non_void_mask"] > 0
  np.testing.assert_allclose(targets.matching_costs.numpy()[non_void], weights[non_void],
                             rtol=0, atol=1e-7)


def test_injected_matching_targets(loss_fixture):
  gt, targets = _fixture_targets(loss_fixture, loss_fixture.matching)
  non_void = gt.mask_non_void.numpy() > 0
  slots = targets.slot_of_mask.numpy()
  np.testing.assert_array_equal(slots[non_void], loss_fixture.matching.numpy()[non_void])
  assert np.all(slots[~non_void] == -1)
  class_target = targets.slot_class_target.numpy()
  np.testing.assert_array_equal(class_target.sum(-1), 1.0)
  positive = class_target[..., -1] == 0
  np.testing.assert_array_equal(positive.sum(1), non_void.sum(1))
  dice_weight = targets.slot_dice_weight.numpy()
  assert np.all(dice_weight[~positive] == 0) and np.all(dice_weight[positive] >= 1e-5)
  assert np.all(targets.slot_class_weight.numpy() >= 1e-5)
  # Every pixel of a matched mask points at exactly its slot.
  np.testing.assert_array_equal(targets.pixel_slot_target.numpy().sum(-1),
                                gt.pixel_in_mask.numpy())


def test_more_masks_than_slots():
  """5 present masks, 3 slots: the 3 best are matched, the others stay unmatched (-1)."""
  semantic = np.repeat(np.arange(1, 6, dtype=np.int32), 2)[None, None].repeat(3, 1)  # [1, 3, 10]
  thing_ids = np.full_like(semantic, -1)
  gt = MaskGroundTruth.from_targets(tf.constant(semantic), tf.constant(thing_ids),
                                    tf.constant([[-1.0]]), (3, 10), 0, [], [1, 2, 3, 4, 5])
  logits = np.full((1, 30, 3), -5.0, np.float32)
  for slot, cls in enumerate((2, 4, 5)):
    logits[0, semantic.reshape(-1) == cls, slot] = 5.0
  class_logits = np.zeros((1, 3, 6), np.float32)
  class_logits[0, [0, 1, 2], [1, 3, 4]] = 5.0
  targets = MatchedTargets.from_prediction(gt, tf.constant(logits), tf.constant(class_logits))
  np.testing.assert_array_equal(targets.slot_of_mask.numpy(), [[-1, -1, 0, -1, 1, 2]])
