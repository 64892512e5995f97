"""In-graph resizing for deployment, in float32 and TFLite-builtin operations only.

kMaX-DeepLab (Yu et al., "k-means Mask Transformer", ECCV 2022) is evaluated,
as in DeepLab2, on images resized so that they fit the crop (`resize_to_range`:
corner-aligned bilinear) and padded at the bottom/right with the mean pixel;
predictions are cut back to the resized region and brought to the input size
with corner-aligned nearest-neighbour resizing.

kmax_tf.data.preprocessing computes the resized size with DeepLab2's float64
ratios. TFLite has no float64 kernels, so the size is computed here in float32:
for integer sizes below 2**24 the float32 quotient equals the float64 quotient
rounded to float32 (a float64 quotient of such integers can never fall on a
float32 rounding midpoint), so the sizes are identical (checked in tests).
Nearest-neighbour resizing is written as gathers of row and column indices,
which also work on int32 maps in TFLite (its RESIZE_NEAREST_NEIGHBOR kernel does not
take int32).
"""
from typing import Optional, Sequence, Tuple

import tensorflow as tf

MEAN_PIXEL = 127.5


def _floor_scaled(size: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
  return tf.cast(tf.floor(tf.cast(size, tf.float32) * scale), tf.int32)


def resize_to_range_size(height: tf.Tensor, width: tf.Tensor,
                         min_size: Optional[Tuple[int, int]],
                         max_size: Optional[Tuple[int, int]],
                         factor: Optional[int] = None) -> tf.Tensor:
  """[height, width] int32 after DeepLab2's resize_to_range, in float32 math.

  Same contract as kmax_tf.data.preprocessing.resize_to_range_size: scale so
  both sides reach `min_size`, then down (never up) so both fit `max_size`;
  with `factor`, sides become multiples of factor plus one.
  """
  height = tf.cast(height, tf.int32)
  width = tf.cast(width, tf.int32)
  if min_size:
    scale = tf.maximum(float(min_size[0]) / tf.cast(height, tf.float32),
                       float(min_size[1]) / tf.cast(width, tf.float32))
    height, width = _floor_scaled(height, scale), _floor_scaled(width, scale)
  if max_size:
    if factor:
      max_size = tuple(m - (m - 1) % factor for m in max_size)
    scale = tf.minimum(float(max_size[0]) / tf.cast(height, tf.float32),
                       float(max_size[1]) / tf.cast(width, tf.float32))
    scale = tf.minimum(scale, 1.0)
    height, width = _floor_scaled(height, scale), _floor_scaled(width, scale)
  size = tf.stack([height, width])
  if factor:
    size += (factor - (size - 1) % factor) % factor
  return size


def resize_bilinear_align_corners(images: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
  """float32 [B, H, W, C] -> [B, size[0], size[1], C], TF1 corner-aligned kernel."""
  return tf.raw_ops.ResizeBilinear(images=images, size=size, align_corners=True,
                                   half_pixel_centers=False)


def pad_to_crop(images: tf.Tensor, crop_size: Sequence[int]) -> tf.Tensor:
  """Pads float32 [B, h, w, 3] at the bottom/right to the crop with the mean pixel.

  The shift by the mean, zero padding and shift back is DeepLab2's float32
  sequence; for pixel values it is exact, so the model sees identical inputs.
  """
  shape = tf.shape(images)
  paddings = tf.stack([[0, 0], [0, crop_size[0] - shape[1]], [0, crop_size[1] - shape[2]],
                       [0, 0]])
  padded = tf.pad(images - MEAN_PIXEL, paddings) + MEAN_PIXEL
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
  """
  rows = _nearest_indices(region[0], size[0])
  cols = _nearest_indices(region[1], size[1])
  return tf.gather(tf.gather(maps, rows, axis=1), cols, axis=2)
