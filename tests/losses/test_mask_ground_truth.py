"""MaskGroundTruth: DeepLab2's `_pre_process_ground_truth` outputs (loss fixture) and rules."""
import numpy as np
import tensorflow as tf

from kmax_tf.losses import kmax_loss
from kmax_tf.losses.mask_ground_truth import MaskGroundTruth

COCO_THINGS = list(range(1, 81))
COCO_STUFF = list(range(81, 134))


def test_matches_deeplab2_fixture(loss_fixture):
  """Integer / count-valued outputs: bit-exact (they are exact in float32)."""
  y_true = loss_fixture.y_true
  gt = MaskGroundTruth.from_targets(
      y_true[kmax_loss.GT_SEMANTIC], y_true[kmax_loss.GT_THING_ID_MASK],
      y_true[kmax_loss.GT_THING_ID_CLASS], (65, 65), 0, COCO_THINGS, COCO_STUFF)
  arrays = loss_fixture.arrays
  np.testing.assert_array_equal(gt.mask_class.numpy(), arrays["gt_preprocessed/mask_gt_semantic_map"])
  np.testing.assert_array_equal(gt.mask_non_void.numpy(),
                                arrays["gt_preprocessed/mask_gt_non_void_mask"])
  np.testing.assert_array_equal(gt.mask_area.numpy(), arrays["gt_preprocessed/mask_gt_area"][..., 0])
  np.testing.assert_array_equal(gt.pixel_inverse_mask_area.numpy(),
                                arrays["gt_preprocessed/inverse_pixel_gt_mask_area"])
  assert gt.pixel_mask_one_hot.shape == (2, 65 * 65, 181)
  assert gt.mask_class_one_hot.shape == (2, 181, 133)
  # README: 23 + 18 non-void masks.
  np.testing.assert_array_equal(gt.mask_non_void.numpy().sum(axis=1), [23, 18])


def test_rules_on_a_small_case():
  """Ignore label outside the classes, crowd-like pixels, masks lost by striding."""
  semantic = np.full((1, 5, 5), 2, np.int32)       # stuff class 2 everywhere
  semantic[0, 0, :] = 255                          # ignored row
  semantic[0, 2, 2] = 1                            # thing 0 at a kept pixel (stride 2)
  semantic[0, 1, 1] = 1                            # thing 1 only at a dropped pixel
  semantic[0, 4, 4] = 1                            # thing pixel without instance (crowd)
  thing_ids = np.full((1, 5, 5), -1, np.int32)
  thing_ids[0, 2, 2] = 0
  thing_ids[0, 1, 1] = 1
  thing_class = np.array([[1, 1, -1]], np.float32)
  gt = MaskGroundTruth.from_targets(tf.constant(semantic), tf.constant(thing_ids),
                                    tf.constant(thing_class), (3, 3), 255, [1], [0, 2])
  # Masks: thing 0, thing 1, thing pad, stuff 0, stuff 2.
  np.testing.assert_array_equal(gt.mask_class.numpy(), [[1, -1, -1, -1, 2]])
  np.testing.assert_array_equal(gt.mask_area.numpy(), [[1, 0, 0, 0, 4]])
  np.testing.assert_array_equal(gt.pixel_non_void.numpy().reshape(3, 3),
                                [[0, 0, 0], [1, 1, 1], [1, 1, 1]])
  np.testing.assert_array_equal(gt.pixel_in_mask.numpy().reshape(3, 3),
                                [[0, 0, 0], [1, 1, 1], [1, 1, 0]])
  np.testing.assert_array_equal(gt.pixel_thing.numpy().reshape(3, 3),
                                [[0, 0, 0], [0, 1, 0], [0, 0, 0]])
  np.testing.assert_allclose(gt.pixel_inverse_mask_area.numpy().reshape(3, 3),
                             [[9, 9, 9], [9 / 4, 9, 9 / 4], [9 / 4, 9 / 4, 9]])
  np.testing.assert_array_equal(gt.mask_class_one_hot.numpy()[0],
                                [[1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 1]])
