"""PQ-style loss of MaX-DeepLab, as used by kMaX-DeepLab.

MaX-DeepLab (Wang et al., "End-to-End Panoptic Segmentation with Mask
Transformers", CVPR 2021), Eq. 10: the PQ-style similarity of a matched pair is
p(class) * dice(mask). Its loss splits into a class term (cross-entropy of the
slot's class, weighted by the stop-gradient matched dice) and a mask dice term
(dice loss of the slot's mask, weighted by the stop-gradient matched class
probability). Unmatched slots are trained towards the void class.

Both terms follow DeepLab2: the class term is a focal cross-entropy with
gamma = 0 and alpha weighting positives vs. void, averaged over slots with a
non-zero loss; the dice term is summed over slots and scaled by
alpha / num_slots so both terms share weight and normalization.
"""
import tensorflow as tf

from kmax_tf.losses.nonzero_mean import nonzero_mean


def pq_style_class_term(class_logits: tf.Tensor, slot_class_target: tf.Tensor,
                        slot_class_weight: tf.Tensor, focal_loss_alpha: float,
                        loss_weight: float = 1.0) -> tf.Tensor:
  """Weighted class term per image, [B].

  Args:
    class_logits: [B, N, K + 1] class logits (last channel void).
    slot_class_target: [B, N, K + 1] one-hot targets (MatchedTargets).
    slot_class_weight: [B, N] dynamic weights (MatchedTargets).
    focal_loss_alpha: weight of positive slots; void targets get 1 - alpha.
    loss_weight: the PQ-style loss weight.
  """
  cross_entropy = tf.nn.softmax_cross_entropy_with_logits(slot_class_target, class_logits)
  is_void = slot_class_target[..., -1]
  alpha = focal_loss_alpha * (1.0 - is_void) + (1.0 - focal_loss_alpha) * is_void
  return nonzero_mean(alpha * cross_entropy * slot_class_weight) * loss_weight


def pq_style_mask_dice_term(mask_logits: tf.Tensor, pixel_slot_target: tf.Tensor,
                            pixel_in_mask: tf.Tensor, slot_dice_weight: tf.Tensor,
                            focal_loss_alpha: float, loss_weight: float = 1.0) -> tf.Tensor:
  """Weighted mask dice term per image, [B].

  Args:
    mask_logits: [B, P, N] pixel-space mask logits (softmax over slots).
    pixel_slot_target: [B, P, N] matched ground-truth mask of each slot.
    pixel_in_mask: [B, P] 1 on pixels of any ground-truth mask; the
      prediction is only scored there.
    slot_dice_weight: [B, N] dynamic weights (0 for unmatched slots).
    focal_loss_alpha: applied to this term too, so it balances the class term.
    loss_weight: the PQ-style loss weight.
  """
  num_slots = mask_logits.shape[-1]
  probs = tf.nn.softmax(mask_logits, axis=-1) * pixel_in_mask[:, :, None]
  # Smoothing 1 keeps the dice of two empty masks defined (V-Net, Milletari
  # et al., 3DV 2016, with DeepLab2's smoothing).
  numerator = 2.0 * tf.reduce_sum(probs * pixel_slot_target, axis=1) + 1.0
  denominator = tf.reduce_sum(probs, axis=1) + tf.reduce_sum(pixel_slot_target, axis=1) + 1.0
  dice_loss = 1.0 - tf.math.divide_no_nan(numerator, denominator)
  # One scale factor, folded in Python as DeepLab2 does.
  scale = loss_weight * (focal_loss_alpha / num_slots)
  return tf.reduce_sum(dice_loss * slot_dice_weight, axis=-1) * scale
