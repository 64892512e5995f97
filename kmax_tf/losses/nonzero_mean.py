"""Per-image mean of the non-zero (optionally top-k) element losses.

MaX-DeepLab (Wang et al., CVPR 2021) / kMaX-DeepLab
losses, as DeepLab2 reduces them: each image's element losses (pixels or mask
slots) are averaged over the elements whose weighted loss is non-zero, so void
or zero-weight elements neither add loss nor dilute the mean. With
`top_k_percent` < 1 only the largest losses are kept first (hard pixel mining,
Wu et al., "Bridging category-level and instance-level semantic image
segmentation", 2016).
"""
import numpy as np
import tensorflow as tf


def nonzero_mean(losses: tf.Tensor, top_k_percent: float = 1.0) -> tf.Tensor:
  """Reduces [batch, ...] element losses to [batch]; 0 for an all-zero image.

  Args:
    losses: [batch, ...] float per-element losses (pixels or mask slots) with
      static non-batch dimensions; zero entries (void, zero weight) are
      excluded from the mean.
    top_k_percent: fraction in [0, 1] of each image's largest losses to keep
      before averaging (rounded half to even); 1.0 keeps all.

  Returns:
    [batch] float, the mean of each image's kept non-zero losses.
  """
  if not 0.0 <= top_k_percent <= 1.0:
    raise ValueError(f"top_k_percent must lie in [0, 1], got {top_k_percent}")
  num_elements = int(np.prod(losses.shape.as_list()[1:]))
  losses = tf.reshape(losses, [-1, num_elements])
  if top_k_percent != 1.0:
    # Rounded as DeepLab2 does it: float32 product, round half to even.
    k = int(np.round(np.float32(top_k_percent) * np.float32(num_elements)))
    losses = tf.math.top_k(losses, k, sorted=False).values
  count = tf.reduce_sum(tf.cast(tf.not_equal(losses, 0.0), losses.dtype), axis=1)
  return tf.math.divide_no_nan(tf.reduce_sum(losses, axis=1), count)
