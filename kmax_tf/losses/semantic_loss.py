"""Auxiliary semantic segmentation loss of MaX-DeepLab / kMaX-DeepLab.

MaX-DeepLab (Wang et al., CVPR 2021) and kMaX-DeepLab
add a per-pixel softmax cross-entropy on an auxiliary semantic head. The
ground truth and its per-pixel weights are brought to the logits' resolution by
strided slicing; ignored pixels get weight 0; the weighted losses are averaged
over pixels with a non-zero loss. Optionally only K pixels drawn by
object-size balanced sampling (pixel_sampling) are used.
"""
from typing import Optional

import tensorflow as tf

from kmax_tf.losses.nonzero_mean import nonzero_mean
from kmax_tf.losses.strided_downsample import strided_downsample


def semantic_loss(semantic_logits: tf.Tensor, semantic_gt: tf.Tensor,
                  semantic_loss_weight: tf.Tensor, num_classes: int, ignore_label: int,
                  top_k_percent: float = 1.0, loss_weight: float = 1.0,
                  sample_indices: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Weighted loss per image, [B].

  Args:
    semantic_logits: [B, h, w, num_classes] logits.
    semantic_gt: [B, H, W] int labels ((H-1, W-1) a multiple of (h-1, w-1)).
    semantic_loss_weight: [B, H, W] float per-pixel weights.
    num_classes: number of semantic classes (one-hot depth).
    ignore_label: label whose pixels are not scored.
    top_k_percent: fraction of the hardest (sampled) pixels kept.
    loss_weight: the semantic loss weight.
    sample_indices: optional [B, K] int flat pixel indices at (h, w); when
      given only those pixels are scored.
  """
  size = semantic_logits.shape.as_list()[1:3]
  num_pixels = size[0] * size[1]
  labels = tf.reshape(tf.cast(strided_downsample(semantic_gt, size), tf.int32), [-1, num_pixels])
  weights = tf.reshape(strided_downsample(tf.cast(semantic_loss_weight, tf.float32), size),
                       [-1, num_pixels])
  logits = tf.reshape(semantic_logits, [-1, num_pixels, semantic_logits.shape[-1]])
  if sample_indices is not None:
    labels = tf.gather(labels, sample_indices, batch_dims=1)
    weights = tf.gather(weights, sample_indices, batch_dims=1)
    logits = tf.gather(logits, sample_indices, batch_dims=1)
  weights *= tf.cast(tf.not_equal(labels, ignore_label), tf.float32)
  cross_entropy = tf.nn.softmax_cross_entropy_with_logits(
      tf.one_hot(labels, num_classes), logits)
  return nonzero_mean(cross_entropy * weights, top_k_percent) * loss_weight
