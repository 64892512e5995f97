"""Object-size balanced pixel sampling (CMT-DeepLab / kMaX-DeepLab).

CMT-DeepLab (Yu et al., CVPR 2022) and kMaX-DeepLab
compute the pixel-wise losses on K sampled pixels. Pixels are drawn without
replacement with probability proportional to (1 / area of their mask) ** T,
which favours small objects for T > 0; void pixels are only drawn when fewer
than K non-void pixels exist. Sampling uses the Gumbel-top-k trick (Kool et
al., "Stochastic Beams and Where to Find Them", ICML 2019).
"""
import tensorflow as tf

# Added to the logits of void pixels; DeepLab2's softmax masking constant.
_VOID_LOGIT = -99999.0


def size_balanced_logits(pixel_inverse_mask_area: tf.Tensor, pixel_non_void: tf.Tensor,
                         temperature: float) -> tf.Tensor:
  """[B, P] sampling logits: T * log(P / mask area), void pixels pushed last.

  Args:
    pixel_inverse_mask_area: [B, P] float, P / (pixel count of the ground-truth
      mask each pixel belongs to), P being the number of pixels per image.
    pixel_non_void: [B, P] float, 1.0 for non-void pixels, 0.0 for void.
    temperature: exponent T on the inverse area; 0 samples uniformly, larger
      values favour small objects.

  Returns:
    [B, P] float sampling logits (void pixels get about -99999 added).
  """
  return (tf.math.log(pixel_inverse_mask_area) * temperature +
          (1.0 - pixel_non_void) * _VOID_LOGIT)


def gumbel_top_k(logits: tf.Tensor, k: int) -> tf.Tensor:
  """[B, k] int32 indices drawn without replacement from softmax(logits).

  Args:
    logits: [B, P] float unnormalised log-probabilities of each of P items.
    k: number of draws per row, <= P.

  Returns:
    [B, k] int32 indices into the P axis, in decreasing perturbed-logit order.
  """
  gumbel = -tf.math.log(-tf.math.log(tf.random.uniform(tf.shape(logits), 0.0, 1.0)))
  return tf.math.top_k(logits + gumbel, k).indices
