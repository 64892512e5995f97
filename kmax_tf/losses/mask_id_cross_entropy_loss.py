"""Mask-ID cross-entropy of MaX-DeepLab / kMaX-DeepLab.

MaX-DeepLab (Wang et al., CVPR 2021), Sec. 3.2: every pixel of a matched
ground-truth mask is classified into the mask slot matched to that mask
(softmax over slots), which sharpens the masks beyond the dice term.
"""
import tensorflow as tf

from kmax_tf.losses.nonzero_mean import nonzero_mean


def mask_id_cross_entropy_loss(mask_logits: tf.Tensor, pixel_slot_target: tf.Tensor,
                               pixel_non_void: tf.Tensor,
                               top_k_percent: float = 1.0,
                               loss_weight: float = 1.0) -> tf.Tensor:
  """Weighted loss per image, [B].

  Args:
    mask_logits: [B, P, N] pixel-space mask logits.
    pixel_slot_target: [B, P, N] one-hot matched slot of each pixel's mask
      (all zero for pixels outside the matched masks, which adds no loss).
    pixel_non_void: [B, P] pixel weights (1 on non-void pixels).
    top_k_percent: fraction of the hardest pixels kept.
    loss_weight: the mask-ID cross-entropy loss weight.
  """
  cross_entropy = tf.nn.softmax_cross_entropy_with_logits(pixel_slot_target, mask_logits)
  return nonzero_mean(cross_entropy * pixel_non_void, top_k_percent) * loss_weight
