"""Panoptic predictions drawn over their images, for TensorBoard.

Panoptic maps
hold class * label_divisor + instance ids (Kirillov et al., CVPR 2019). Each
segment gets its class colour, shifted per instance so touching instances of
one class stay distinguishable, blended with the image; segment borders are
drawn white.
"""
from typing import Optional

import numpy as np
import tensorflow as tf

_BLEND = 0.55
_INSTANCE_SHIFT = 37


def colorize(panoptic: tf.Tensor, class_colors, label_divisor: int) -> tf.Tensor:
  """[B, H, W] panoptic ids -> [B, H, W, 3] float32 colours in 0..255.

  Args:
    panoptic: integer [B, H, W] panoptic ids (class * label_divisor + instance).
    class_colors: [num_classes, 3] RGB colours in 0..255, indexed by class id
      (out-of-range ids use the nearest end).
    label_divisor: the dataset's panoptic label divisor.
  """
  colors = tf.constant(np.asarray(class_colors, np.float32).reshape(-1, 3))
  panoptic = tf.cast(panoptic, tf.int32)
  semantic = tf.clip_by_value(panoptic // label_divisor, 0, tf.shape(colors)[0] - 1)
  instance = panoptic % label_divisor
  base = tf.gather(colors, semantic)
  shift = tf.cast((instance * _INSTANCE_SHIFT) % 96 - 48, tf.float32)[..., None]
  shift = tf.where(instance[..., None] > 0, shift, 0.0)
  return tf.clip_by_value(base + shift, 0.0, 255.0)


def _borders(panoptic: tf.Tensor) -> tf.Tensor:
  """[B, H, W] bool: pixels whose right or lower neighbour is another segment."""
  right = tf.pad(tf.not_equal(panoptic[:, :, 1:], panoptic[:, :, :-1]), [[0, 0], [0, 0], [0, 1]])
  down = tf.pad(tf.not_equal(panoptic[:, 1:, :], panoptic[:, :-1, :]), [[0, 0], [0, 1], [0, 0]])
  return tf.logical_or(right, down)


def overlay(images: tf.Tensor, panoptic: tf.Tensor, class_colors, label_divisor: int) -> tf.Tensor:
  """[B, H, W, 3] images (0..255) with the panoptic map blended in, float32 0..1.

  Args:
    images: [B, H, W, 3] RGB in 0..255, any numeric dtype.
    panoptic: integer [B, h, w] panoptic ids; resized (nearest) to H x W.
    class_colors: [num_classes, 3] RGB colours in 0..255.
    label_divisor: the dataset's panoptic label divisor.
  """
  images = tf.cast(images, tf.float32)
  panoptic = tf.cast(panoptic, tf.int32)
  size = tf.shape(images)[1:3]
  panoptic = tf.image.resize(panoptic[..., None], size, method="nearest")[..., 0]
  blended = (1 - _BLEND) * images + _BLEND * colorize(panoptic, class_colors, label_divisor)
  blended = tf.where(_borders(panoptic)[..., None], 255.0, blended)
  return blended / 255.0


def overlay_grid(images: tf.Tensor, predicted: tf.Tensor, class_colors, label_divisor: int,
                 groundtruth: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Per example [image | prediction | ground truth] side by side, float32 0..1.

  Args:
    images: [B, H, W, 3] RGB in 0..255.
    predicted: integer [B, h, w] predicted panoptic ids.
    class_colors: [num_classes, 3] RGB colours in 0..255.
    label_divisor: the dataset's panoptic label divisor.
    groundtruth: integer [B, h', w'] ground-truth panoptic ids, or None for a
      two-panel grid.

  Returns:
    float32 [B, H, 2 W or 3 W, 3].
  """
  images = tf.cast(images, tf.float32)
  panels = [images / 255.0, overlay(images, predicted, class_colors, label_divisor)]
  if groundtruth is not None:
    panels.append(overlay(images, groundtruth, class_colors, label_divisor))
  return tf.concat(panels, axis=2)
