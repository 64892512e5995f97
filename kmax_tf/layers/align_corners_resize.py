"""Bilinear resizing with aligned corners, in DeepLab2's operation order.

kMaX-DeepLab (Yu et al., "k-means Mask Transformer", ECCV 2022) and MaX-DeepLab
(Wang et al., CVPR 2021) resize features with `align_corners=True` bilinear
interpolation. DeepLab2 resizes tensors with at most 32 channels in two passes
(first along the height, then along the width, each time moving the other
spatial axis onto the channel axis) to save TPU padding. The two passes round
differently from a single 2-D resize (which interpolates the width first), so
we keep the same split to reproduce DeepLab2's numbers bit for bit.
"""
from typing import Sequence

import tensorflow as tf

# DeepLab2 switches to the two-pass form at and below this channel count.
TWO_PASS_MAX_CHANNELS = 32


def resize_bilinear_align_corners(images: tf.Tensor, size: Sequence[int]) -> tf.Tensor:
  """Resizes a static-shape [B, H, W, C] tensor to `size` = (height, width)."""
  _, height, width, channels = images.shape.as_list()
  out_height, out_width = int(size[0]), int(size[1])
  if (height, width) == (out_height, out_width):
    return images
  dtype = images.dtype
  x = tf.cast(images, tf.float32)
  if channels > TWO_PASS_MAX_CHANNELS:
    x = _resize(x, out_height, out_width)
  else:
    # As [B, C, H, W] the resize sees (C, H) as its spatial axes; C maps onto
    # itself, which aligned corners make an exact copy, so only H is interpolated.
    x = _resize(tf.transpose(x, [0, 3, 1, 2]), channels, out_height)
    x = _resize(tf.transpose(x, [0, 1, 3, 2]), channels, out_width)
    x = tf.transpose(x, [0, 3, 2, 1])
  return tf.cast(x, dtype)


def _resize(x, height, width):
  # The TF1 kernel (corner-aligned, no half-pixel centres) that DeepLab2 calls
  # through tf.compat.v1.image.resize_bilinear.
  return tf.raw_ops.ResizeBilinear(
      images=x, size=[height, width], align_corners=True, half_pixel_centers=False)
