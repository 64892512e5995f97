"""Instance discrimination losses on the pixel-space normalized features.

Two variants, as in DeepLab2:
- `pixel_contrastive_instance_discrimination_loss` (CMT-DeepLab, Yu et al.,
  CVPR 2022; used by kMaX-DeepLab, Yu et al., ECCV 2022): K sampled pixels;
  each pixel's feature should be closer to the features of the sampled pixels
  of its own ground-truth mask than to the others (a supervised contrastive
  loss over the K x K feature similarities).
- `mask_average_instance_discrimination_loss` (MaX-DeepLab, Wang et al.,
  CVPR 2021, Sec. 3.3): every thing pixel is classified among the
  L2-normalized average features of all ground-truth masks.
Both scale the similarities by 1 / temperature and average the per-pixel
cross-entropies over pixels with a non-zero loss.
"""
import tensorflow as tf

from kmax_tf.losses.nonzero_mean import nonzero_mean

# Logit given to void masks so the softmax ignores them (DeepLab2's value).
_MASKED_LOGIT = -99999.0


def pixel_contrastive_instance_discrimination_loss(
    pixel_feature: tf.Tensor, pixel_mask_one_hot: tf.Tensor, sample_indices: tf.Tensor,
    temperature: float, top_k_percent: float = 1.0, loss_weight: float = 1.0) -> tf.Tensor:
  """Weighted loss per image, [B].

  Args:
    pixel_feature: [B, P, C] normalized pixel features.
    pixel_mask_one_hot: [B, P, M] ground-truth mask of each pixel.
    sample_indices: [B, K] int pixel indices (pixel_sampling.gumbel_top_k of
      the size-balanced logits); sampled void pixels act as negatives only.
    temperature: similarity temperature.
    top_k_percent: fraction of the hardest sampled pixels kept.
    loss_weight: the instance discrimination loss weight.
  """
  gt = tf.gather(pixel_mask_one_hot, sample_indices, batch_dims=1)
  feature = tf.gather(pixel_feature, sample_indices, batch_dims=1)
  # The target of pixel k is uniform over the n_k sampled pixels of its mask,
  # so its cross-entropy is lse_k - (f_k . sum of those features) / (n_k T).
  # The K x K target matrix is never built (DeepLab2 builds it with a
  # K x K x M product, the loss's largest cost), and the K x K logits live
  # only inside the log-sum-exp.
  mask_feature_sum = tf.einsum("bkm,bkc->bmc", gt, feature)
  same_mask_feature_sum = tf.einsum("bkm,bmc->bkc", gt, mask_feature_sum)
  same_mask_count = tf.einsum("bkm,bm->bk", gt, tf.reduce_sum(gt, axis=1))
  target_logit = (tf.reduce_sum(feature * same_mask_feature_sum, axis=-1) / temperature /
                  tf.maximum(same_mask_count, 1.0))
  logsumexp = _similarity_logsumexp(feature, temperature)
  # Sampled void pixels have no target and add no loss. DeepLab2's gradient,
  # however, is TF's softmax cross-entropy gradient (softmax - labels), which
  # for an all-zero label row is the softmax: void pixels get the gradient of
  # their log-sum-exp. We keep that gradient so training matches DeepLab2.
  cross_entropy = tf.where(same_mask_count > 0.5, logsumexp - target_logit,
                           logsumexp - tf.stop_gradient(logsumexp))
  return nonzero_mean(cross_entropy, top_k_percent) * loss_weight


def _similarity_logsumexp(feature, temperature):
  """[B, K] logsumexp_j(f_k . f_j / T), recomputing the K x K logits for the gradient."""

  def logits(feature):
    return tf.einsum("bkc,bjc->bkj", feature, feature) / temperature

  @tf.custom_gradient
  def logsumexp(feature):
    result = tf.reduce_logsumexp(logits(feature), axis=-1)

    def grad(upstream):
      weights = upstream[:, :, None] * tf.exp(logits(feature) - result[:, :, None])
      # d(f_k . f_j) / df reaches both f_k and f_j.
      weights += tf.transpose(weights, [0, 2, 1])
      return tf.einsum("bkj,bjc->bkc", weights, feature) / temperature

    return result, grad

  return logsumexp(feature)


def mask_average_instance_discrimination_loss(
    pixel_feature: tf.Tensor, pixel_mask_one_hot: tf.Tensor, mask_area: tf.Tensor,
    mask_non_void: tf.Tensor, pixel_thing: tf.Tensor, temperature: float,
    top_k_percent: float = 1.0, loss_weight: float = 1.0) -> tf.Tensor:
  """Weighted loss per image, [B].

  Args:
    pixel_feature: [B, P, C] normalized pixel features.
    pixel_mask_one_hot: [B, P, M] ground-truth mask of each pixel.
    mask_area: [B, M] pixel count of each mask.
    mask_non_void: [B, M] 1 for present masks.
    pixel_thing: [B, P] 1 on thing pixels (only they are scored).
    temperature: similarity temperature.
    top_k_percent: fraction of the hardest pixels kept.
    loss_weight: the instance discrimination loss weight.
  """
  mask_feature = (tf.einsum("bpc,bpm->bmc", pixel_feature, pixel_mask_one_hot) /
                  tf.maximum(mask_area[:, :, None], 1.0))
  mask_feature = tf.math.l2_normalize(mask_feature, axis=-1)
  logits = tf.einsum("bpc,bmc->bpm", pixel_feature, mask_feature) / temperature
  present = mask_non_void[:, None, :]
  logits = present * logits + (1.0 - present) * _MASKED_LOGIT
  cross_entropy = tf.nn.softmax_cross_entropy_with_logits(pixel_mask_one_hot, logits)
  return nonzero_mean(cross_entropy * pixel_thing, top_k_percent) * loss_weight
