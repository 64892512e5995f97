"""Instance discrimination losses on the pixel-space normalized features.

Two variants, as in DeepLab2:
- `pixel_contrastive_instance_discrimination_loss` (CMT-DeepLab, Yu et al.,
  CVPR 2022; used by kMaX-DeepLab): K sampled pixels;
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
# Rows of the K x K sampled-pixel softmax built at once; see
# _similarity_probabilities_times.
_ROWS_PER_CHUNK = 256


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
  if top_k_percent == 1.0:
    # Every element of a top-k-free mean gets d(loss)/d(element) = weight /
    # count, so the log-sum-exp terms reach the loss only through their sum,
    # whose gradient is computed in the forward pass (see _logsumexp_and_sum):
    # no K x K matrix outlives its own loss, whatever the pass order.
    logsumexp, logsumexp_sum = _logsumexp_and_sum(feature, temperature)
    cross_entropy = tf.where(same_mask_count > 0.5, logsumexp - target_logit,
                             tf.zeros_like(logsumexp))
    loss = nonzero_mean(cross_entropy, 1.0)
    count = tf.reduce_sum(tf.cast(tf.not_equal(cross_entropy, 0.0), tf.float32), axis=1)
    # An exact zero in value that carries the log-sum-exp gradient, so the
    # value is bit-identical to the general path below.
    carrier = tf.math.divide_no_nan(logsumexp_sum - tf.stop_gradient(logsumexp_sum), count)
    return (loss + carrier) * loss_weight
  logsumexp = _similarity_logsumexp(feature, temperature)
  # Sampled void pixels have no target and add no loss. DeepLab2's gradient,
  # however, is TF's softmax cross-entropy gradient (softmax - labels), which
  # for an all-zero label row is the softmax: void pixels get the gradient of
  # their log-sum-exp. We keep that gradient so training matches DeepLab2
  # (the top-k-free path above does the same: the carrier reaches every row).
  cross_entropy = tf.where(same_mask_count > 0.5, logsumexp - target_logit,
                           logsumexp - tf.stop_gradient(logsumexp))
  return nonzero_mean(cross_entropy, top_k_percent) * loss_weight


def _similarity_probabilities_times(feature, temperature):
  """(logsumexp [B, K], d(sum_k logsumexp_k)/d feature [B, K, C]) of f_k . f_j / T.

  With P = softmax over j of f_k . f_j / T, the gradient is (P + P^T) f / T.
  P is built _ROWS_PER_CHUNK rows at a time in a sequential loop, so the
  loss never holds more than [B, _ROWS_PER_CHUNK, K] of it (at K = 4096 a full
  P and its temporaries were 0.4-0.5 GB of the training step's peak); the
  price is one more [B, R, K] x [B, R, C] product per chunk for the P^T f term.
  """
  num_samples = feature.shape[1]
  rows = min(_ROWS_PER_CHUNK, num_samples)
  num_chunks = -(-num_samples // rows)
  # Zero query rows pad the last chunk; they add nothing to P^T f and their
  # own rows are dropped below.
  queries = tf.pad(feature, [[0, 0], [0, num_chunks * rows - num_samples], [0, 0]])

  def chunk(i, logsumexps, row_terms, column_term):
    query = queries[:, i * rows:(i + 1) * rows]
    logits = tf.einsum("brc,bjc->brj", query, feature) / temperature
    logsumexp = tf.reduce_logsumexp(logits, axis=-1)
    probabilities = tf.exp(logits - logsumexp[:, :, None])
    return (i + 1, logsumexps.write(i, logsumexp),
            row_terms.write(i, tf.einsum("brj,bjc->brc", probabilities, feature)),
            column_term + tf.einsum("brj,brc->bjc", probabilities, query))

  _, logsumexps, row_terms, column_term = tf.while_loop(
      lambda i, *_: i < num_chunks, chunk,
      (tf.constant(0), tf.TensorArray(feature.dtype, num_chunks),
       tf.TensorArray(feature.dtype, num_chunks), tf.zeros_like(feature)),
      parallel_iterations=1)
  batch, channels = tf.shape(feature)[0], feature.shape[2]
  logsumexp = tf.reshape(tf.transpose(logsumexps.stack(), [1, 0, 2]), [batch, -1])
  row_term = tf.reshape(tf.transpose(row_terms.stack(), [1, 0, 2, 3]), [batch, -1, channels])
  return (logsumexp[:, :num_samples],
          (row_term[:, :num_samples] + column_term) / temperature)


def _logsumexp_and_sum(feature, temperature):
  """Per-pixel log-sum-exp (no gradient) and its per-image sum (with gradient).

  The sum's gradient is computed with its value, so the K x K logits are freed
  before the next loss runs instead of waiting for the backward pass (7 of
  them were alive at the training-step memory peak: 0.9 GB at K = 4096,
  batch 2), and nothing is recomputed.
  """

  @tf.custom_gradient
  def logsumexp_and_sum(feature):
    logsumexp, gradient = _similarity_probabilities_times(feature, temperature)

    def grad(upstream_logsumexp, upstream_sum):
      del upstream_logsumexp  # The per-pixel values leave through stop_gradient.
      return upstream_sum[:, None, None] * gradient

    return (logsumexp, tf.reduce_sum(logsumexp, axis=1)), grad

  logsumexp, logsumexp_sum = logsumexp_and_sum(feature)
  return tf.stop_gradient(logsumexp), logsumexp_sum


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
