"""Mask-slot targets from Hungarian matching of predictions to ground truth.

MaX-DeepLab (Wang et al., CVPR 2021), Sec. 3.2 / kMaX-DeepLab: ground-truth masks
are matched one-to-one to mask slots by
maximizing the PQ-style similarity  dice(mask) * p(class); the matched slots
become positives (their class and mask targets come from the matched ground
truth), all other slots are trained towards the void class.

The matching, and every weight derived from it, is computed once from the final
prediction and reused for the auxiliary predictions of the kMaX decoder (deep
supervision), as DeepLab2 does. The matching and weights carry no gradient.

Matching costs are float32 -dice * p(class) in [-1, 0]. Void ground-truth rows
are set to 1, above every real cost, so each real mask is matched whenever
there are enough slots (DeepLab2 uses +-999 fill values; any value above the
real costs gives the same optimum, and a small one keeps float32 precision).
"""
from typing import NamedTuple, Optional

import tensorflow as tf

from kmax_tf.losses.hungarian_matcher import hungarian_matching
from kmax_tf.losses.mask_ground_truth import MaskGroundTruth

# Lower bound of the dynamic loss weights, as in DeepLab2: a zero weight would
# make the non-zero mean treat a slot as void.
MIN_DYNAMIC_WEIGHT = 1e-5
# Stabilizes the dice / overlap ratios of empty masks (DeepLab2's value).
_RATIO_EPSILON = 1e-5
_VOID_ROW_COST = 1.0


class MatchedTargets(NamedTuple):
  """Targets of every mask slot (N slots, M ground-truth masks, P pixels, K classes).

  Attributes:
    matching_costs: [B, M, N] -dice * p(class) of the final prediction (void
      ground-truth rows included, not masked).
    slot_of_mask: [B, M] int32 matched slot of each mask, -1 for void masks
      (and for real masks left over when M > N and all slots are taken).
    mask_slot_one_hot: [B, M, N] float one-hot of slot_of_mask.
    pixel_slot_target: [B, P, N] float, 1 at the slot matched to the pixel's
      ground-truth mask.
    slot_class_target: [B, N, K + 1] float one-hot class target (last = void).
    slot_class_weight: [B, N] weight of the class term: the matched dice for
      positives, the overlap of the predicted mask with void pixels for
      negatives (both at least 1e-5).
    slot_dice_weight: [B, N] weight of the mask dice term: p(matched class)
      (at least 1e-5) for positives, 0 for negatives.
  """
  matching_costs: tf.Tensor
  slot_of_mask: tf.Tensor
  mask_slot_one_hot: tf.Tensor
  pixel_slot_target: tf.Tensor
  slot_class_target: tf.Tensor
  slot_class_weight: tf.Tensor
  slot_dice_weight: tf.Tensor

  @classmethod
  def from_prediction(cls, ground_truth: MaskGroundTruth, mask_logits: tf.Tensor,
                      class_logits: tf.Tensor,
                      slot_of_mask: Optional[tf.Tensor] = None) -> "MatchedTargets":
    """Matches the final prediction to the ground truth and derives targets.

    Args:
      ground_truth: the MaskGroundTruth at the loss resolution.
      mask_logits: [B, P, N] float32 pixel-space mask logits.
      class_logits: [B, N, K + 1] float32 class logits (last = void).
      slot_of_mask: optional [B, M] int matching to use instead of the
        optimal one (e.g. a reference implementation's); entries of void masks
        are ignored.
    """
    mask_logits = tf.stop_gradient(mask_logits)
    class_logits = tf.stop_gradient(class_logits)
    num_slots = mask_logits.shape[-1]
    gt = ground_truth
    mask_probs = tf.nn.softmax(mask_logits, axis=-1)
    non_void_probs = mask_probs * gt.pixel_non_void[:, :, None]
    # Dice similarity of every (ground-truth mask, slot) pair.
    intersection = tf.einsum("bpm,bpn->bmn", gt.pixel_mask_one_hot, non_void_probs)
    half_sizes = (gt.mask_area[:, :, None] + tf.reduce_sum(non_void_probs, axis=1)[:, None, :]) / 2
    mask_dice = intersection / (half_sizes + _RATIO_EPSILON)
    class_probs = tf.nn.softmax(class_logits, axis=-1)[:, :, :-1]
    class_similarity = tf.einsum("bmk,bnk->bmn", gt.mask_class_one_hot, class_probs)
    matching_costs = -mask_dice * class_similarity

    non_void = gt.mask_non_void > 0.5
    if slot_of_mask is None:
      costs = tf.where(non_void[:, :, None], matching_costs, _VOID_ROW_COST)
      slot_of_mask = hungarian_matching(costs)
    slot_of_mask = tf.where(non_void, tf.cast(slot_of_mask, tf.int32), -1)
    mask_slot_one_hot = tf.one_hot(slot_of_mask, num_slots)

    # Positives: each matched slot takes its mask's class, with the matched
    # dice as class weight and the matched class probability as dice weight.
    matched_dice = tf.reduce_max(mask_dice * mask_slot_one_hot, axis=1)
    matched_class_prob = tf.reduce_max(class_similarity * mask_slot_one_hot, axis=2)
    slot_positive_classes = tf.einsum("bmn,bmk->bnk", mask_slot_one_hot, gt.mask_class_one_hot)
    slot_positive = tf.cast(tf.equal(tf.reduce_max(slot_positive_classes, axis=-1), 1.0),
                            tf.float32)
    slot_negative = 1.0 - slot_positive
    # Negatives are down-weighted by how much of the predicted mask is void.
    void_pixels = 1.0 - gt.pixel_non_void
    void_ratio = (tf.einsum("bp,bpn->bn", void_pixels, mask_probs) /
                  (tf.reduce_sum(mask_probs, axis=1) + _RATIO_EPSILON))
    slot_class_weight = (slot_positive * tf.maximum(matched_dice, MIN_DYNAMIC_WEIGHT) +
                         slot_negative * tf.maximum(void_ratio, MIN_DYNAMIC_WEIGHT))
    slot_dice_weight = tf.einsum("bmn,bm->bn", mask_slot_one_hot,
                                 tf.maximum(matched_class_prob, MIN_DYNAMIC_WEIGHT))
    return cls(
        matching_costs=matching_costs,
        slot_of_mask=slot_of_mask,
        mask_slot_one_hot=mask_slot_one_hot,
        pixel_slot_target=tf.einsum("bpm,bmn->bpn", gt.pixel_mask_one_hot, mask_slot_one_hot),
        slot_class_target=tf.concat([slot_positive_classes, slot_negative[:, :, None]], axis=-1),
        slot_class_weight=tf.stop_gradient(slot_class_weight),
        slot_dice_weight=tf.stop_gradient(slot_dice_weight))
