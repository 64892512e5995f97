"""Eval-time geometry: an image into the model's crop and its maps back out.

The one implementation used by predict, the evaluator and the exported
SavedModel/TFLite graphs. As in DeepLab2's evaluation, an image is resized to
fit the crop (`preprocessing.resize_to_range_size`, corner-aligned bilinear),
padded at the bottom/right with the mean pixel; predictions are cut back to the
resized region and brought to the image's size with corner-aligned nearest
neighbour. Only float32 and TFLite-builtin operations: nearest-neighbour resizing
is written as gathers of row and column indices, which also work on int32 maps
in TFLite (its RESIZE_NEAREST_NEIGHBOR kernel does not take int32).
"""
from typing import Optional, Sequence, Tuple

import tensorflow as tf

from kmax_tf.data import preprocessing
from kmax_tf.layers import align_corners_resize


def fitted_size(size: tf.Tensor, min_size: Optional[Tuple[int, int]],
                max_size: Optional[Tuple[int, int]], factor: Optional[int] = None,
                ratio_dtype: tf.DType = tf.float64) -> tf.Tensor:
  """int32 [height, width] an image of `size` ([2] int) is resized to.

  Without min and max size the image is not resized. float32 `ratio_dtype` for
  graphs that TFLite must run (identical sizes, see resize_to_range_size).

  Args:
    size: int [2], the image's (height, width) in pixels.
    min_size: resize value (see preprocessing.resize_spec) both sides must
      reach, or None.
    max_size: resize value both sides must fit in, or None.
    factor: if set, output sides are k * factor + 1.
    ratio_dtype: dtype of the scale ratios, tf.float64 or tf.float32.
  """
  size = tf.cast(size, tf.int32)
  if not (preprocessing.resize_spec(min_size) or preprocessing.resize_spec(max_size)):
    return size
  return preprocessing.resize_to_range_size(size[0], size[1], min_size, max_size, factor,
                                            ratio_dtype=ratio_dtype)


def to_crop(images: tf.Tensor, resized: tf.Tensor, crop_size: Sequence[int]) -> tf.Tensor:
  """[B, H, W, 3] images (any numeric dtype) -> float32 [B, crop_h, crop_w, 3] network input.

  Resized to `resized` ([2] int32, at most the crop) and padded with the mean pixel.

  Args:
    images: [B, H, W, 3] RGB in 0..255.
    resized: int32 [2], (height, width) to resize to, at most crop_size.
    crop_size: (crop_h, crop_w) in pixels, the model's input size.
  """
  resized_images = align_corners_resize.bilinear(tf.cast(images, tf.float32), resized)
  return pad_to_crop(resized_images, crop_size)


def pad_to_crop(images: tf.Tensor, crop_size: Sequence[int]) -> tf.Tensor:
  """Pads float32 [B, h, w, 3] at the bottom/right to the crop with the mean pixel.

  The shift by the mean, zero padding and shift back is DeepLab2's float32
  sequence; for pixel values it is exact, so the model sees identical inputs.

  Args:
    images: float32 [B, h, w, 3] RGB in 0..255, h and w at most the crop.
    crop_size: (crop_h, crop_w) in pixels.

  Returns:
    float32 [B, crop_h, crop_w, 3].
  """
  shape = tf.shape(images)
  paddings = tf.stack([[0, 0], [0, crop_size[0] - shape[1]], [0, crop_size[1] - shape[2]],
                       [0, 0]])
  padded = tf.pad(images - preprocessing.MEAN_PIXEL, paddings) + preprocessing.MEAN_PIXEL
  return tf.ensure_shape(padded, [None, crop_size[0], crop_size[1], images.shape[-1]])


def _nearest_indices(in_size: tf.Tensor, out_size: tf.Tensor) -> tf.Tensor:
  """Source index per output index, as TF's corner-aligned ResizeNearestNeighbor.

  TF computes roundf(float32(i) * scale) with scale = (in - 1) / (out - 1) in
  float32 (in / out when out == 1) and clamps to in - 1. roundf rounds halves
  away from zero; for the non-negative values here that is floor + (frac >= .5),
  written so without a rounding op whose tie rule differs (tf.round is
  half-to-even).
  """
  in_f = tf.cast(in_size, tf.float32)
  out_f = tf.cast(out_size, tf.float32)
  scale = tf.where(out_size > 1, (in_f - 1.0) / tf.maximum(out_f - 1.0, 1.0), in_f / out_f)
  position = tf.cast(tf.range(out_size), tf.float32) * scale
  whole = tf.floor(position)
  index = tf.cast(whole, tf.int32) + tf.cast(position - whole >= 0.5, tf.int32)
  return tf.minimum(index, in_size - 1)


def crop_and_resize_nearest(maps: tf.Tensor, region: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
  """maps[:, :region[0], :region[1]] resized to `size` by corner-aligned nearest neighbour.

  [B, h, w] (any dtype) -> [B, size[0], size[1]]. A gather of rows, then one
  of columns: with a static size the converters fold the indices into
  constants, and two index vectors (size[0] + size[1] ints) are what a mobile
  model should carry, not one index per output pixel (1.6 MB at 641x641).

  Args:
    maps: [B, h, w] per-pixel maps at the crop size, e.g. int32 panoptic ids
      or float32 instance scores.
    region: int32 [2], (height, width) of the valid (unpadded) region.
    size: int32 [2], (height, width) in pixels of the output, usually the
      original image size.
  """
  rows = _nearest_indices(region[0], size[0])
  cols = _nearest_indices(region[1], size[1])
  return tf.gather(tf.gather(maps, rows, axis=1), cols, axis=2)
