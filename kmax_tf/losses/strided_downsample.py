"""Label downsampling by strided slicing, as MaX-DeepLab / kMaX-DeepLab losses do.

kMaX-DeepLab computes its losses at the output stride of
the pixel decoder. Ground-truth maps of size (H - 1) * s + 1 are brought to the
output size by keeping every s-th pixel, which with aligned-corner features is
exactly the label under each output pixel (no interpolation of labels).
"""
from typing import Sequence

import tensorflow as tf


def strided_downsample(labels: tf.Tensor, size: Sequence[int]) -> tf.Tensor:
  """Keeps every s-th pixel of a static-shape [B, H, W, ...] tensor.

  Args:
    labels: [batch, height, width, ...] tensor.
    size: (target_height, target_width); (height - 1) and (width - 1) must be
      the same integer multiple s of (target_height - 1), (target_width - 1).

  Returns:
    [batch, target_height, target_width, ...] tensor `labels[:, ::s, ::s]`.
  """
  height, width = labels.shape.as_list()[1:3]
  target_height, target_width = int(size[0]), int(size[1])
  if (height, width) == (target_height, target_width):
    return labels
  if (target_height < 2 or target_width < 2 or (height - 1) % (target_height - 1)
      or (width - 1) % (target_width - 1)):
    raise ValueError(
        f"Cannot downsample {height}x{width} to {target_height}x{target_width} by an "
        "integer stride: (size - 1) must be a multiple of (target size - 1).")
  stride = (height - 1) // (target_height - 1)
  if stride != (width - 1) // (target_width - 1):
    raise ValueError(
        f"Downsampling {height}x{width} to {target_height}x{target_width} needs "
        "different strides along height and width.")
  return labels[:, ::stride, ::stride]
