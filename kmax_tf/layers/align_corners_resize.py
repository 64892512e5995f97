"""Corner-aligned resizing: the one place kmax_tf calls TensorFlow's resize kernels.

DeepLab2 resizes images, labels, features and predictions with the TF1 kernels
(`align_corners=True`, no half-pixel centres); `bilinear` and `nearest` are those
kernels. `resize_features` is DeepLab2's feature resize: tensors with at most 32
channels are resized in two passes (first along the height, then along the width,
each time moving the other spatial axis onto the channel axis) to save TPU
padding. The two passes round differently from a single 2-D resize (which
interpolates the width first), so the split is kept to reproduce DeepLab2's
numbers bit for bit.
"""
from typing import Sequence, Union

import tensorflow as tf

# DeepLab2 switches to the two-pass form at and below this channel count.
TWO_PASS_MAX_CHANNELS = 32

Size = Union[Sequence[int], tf.Tensor]


def bilinear(images: tf.Tensor, size: Size) -> tf.Tensor:
  """[B, H, W, C] -> float32 [B, size[0], size[1], C], corner-aligned bilinear.

  Args:
    images: [B, H, W, C] real tensor.
    size: (height, width) in pixels, ints or an int32 [2] tensor.
  """
  return tf.raw_ops.ResizeBilinear(images=images, size=size, align_corners=True,
                                   half_pixel_centers=False)


def nearest(images: tf.Tensor, size: Size) -> tf.Tensor:
  """[B, H, W, C] -> [B, size[0], size[1], C] (same dtype), corner-aligned nearest.

  Args:
    images: [B, H, W, C] tensor, e.g. int32 labels.
    size: (height, width) in pixels, ints or an int32 [2] tensor.
  """
  return tf.raw_ops.ResizeNearestNeighbor(images=images, size=size, align_corners=True,
                                          half_pixel_centers=False)


def resize_features(images: tf.Tensor, size: Sequence[int]) -> tf.Tensor:
  """DeepLab2's resize of a static-shape [B, H, W, C] feature to `size` = (height, width).

  Returns the input's dtype (the arithmetic is float32).

  Args:
    images: [B, H, W, C] float feature map with static H, W and C.
    size: (height, width) in pixels of the output.
  """
  _, height, width, channels = images.shape.as_list()
  out_height, out_width = int(size[0]), int(size[1])
  if (height, width) == (out_height, out_width):
    return images
  dtype = images.dtype
  x = tf.cast(images, tf.float32)
  if channels > TWO_PASS_MAX_CHANNELS:
    x = bilinear(x, [out_height, out_width])
  else:
    # As [B, C, H, W] the resize sees (C, H) as its spatial axes; C maps onto
    # itself, which aligned corners make an exact copy, so only H is interpolated.
    x = bilinear(tf.transpose(x, [0, 3, 1, 2]), [channels, out_height])
    x = bilinear(tf.transpose(x, [0, 1, 3, 2]), [channels, out_width])
    x = tf.transpose(x, [0, 3, 2, 1])
  return tf.cast(x, dtype)
