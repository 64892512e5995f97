"""Geometric preprocessing of an image and its panoptic label.

kMaX-DeepLab (training
recipe: random scale, crop, flip, as in DeepLab2).

The arithmetic follows DeepLab2's input preprocessing so that kmax_tf feeds a
model exactly the pixels DeepLab2 would:
  * sizes from `resize_to_range` are computed with DeepLab2's mix of float64
    ratios and float32 products, floored;
  * images are resized with corner-aligned bilinear interpolation (the TF1
    kernel, no half-pixel centres), labels with corner-aligned nearest
    neighbour;
  * padding happens around the mean pixel 127.5: the image is shifted by
    -127.5, zero padded and shifted back, in float32 (so pixels inside the
    image carry that float32 round trip too); labels are padded with a given
    value (the ignore label * label divisor).
Random operations are stateless and take an explicit seed ([2] int tensor),
so a pipeline is reproducible whatever its parallelism.
"""

from typing import Optional, Sequence, Tuple, Union

import tensorflow as tf

from kmax_tf.layers import align_corners_resize

MEAN_PIXEL = 127.5
FLIP_PROBABILITY = 0.5

ResizeValue = Optional[Union[int, Sequence[int]]]


def resize_spec(value: ResizeValue) -> Optional[Tuple[int, int]]:
  """None/empty/non-positive -> None; n -> (n, n); (h, w) -> (h, w).

  Args:
    value: a config resize value in pixels: None, an int, or a sequence of
      0, 1 or 2 ints (height, width).
  """
  if value is None:
    return None
  if isinstance(value, int):
    value = (value,)
  value = tuple(int(v) for v in value)
  if not value:
    return None
  if len(value) == 1:
    value = value * 2
  if len(value) != 2:
    raise ValueError(f"resize value must have 1 or 2 entries, got {value}")
  if value[0] <= 0 or value[1] <= 0:
    return None
  return value


def _scaled(size: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
  """floor(float32(size) * float32(factor)) as int32."""
  return tf.cast(tf.floor(tf.cast(size, tf.float32) *
                          tf.cast(factor, tf.float32)), tf.int32)


def _ratio(numerator: int, denominator: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
  return tf.constant(numerator, dtype) / tf.cast(denominator, dtype)


def resize_to_range_size(height: tf.Tensor, width: tf.Tensor,
                         min_size: ResizeValue = None,
                         max_size: ResizeValue = None,
                         factor: Optional[int] = None,
                         ratio_dtype: tf.DType = tf.float64) -> tf.Tensor:
  """Output [height, width] (int32) of a range-constrained resize.

  The image is scaled so both sides reach min_size (when given), then scaled
  down (never up) so both sides fit max_size (when given); with `factor`,
  sides become multiples of factor plus one, not exceeding max_size.

  `ratio_dtype` float64 is DeepLab2's arithmetic. TFLite has no float64
  kernels, so exported models pass float32: for integer sizes below 2**24 the
  float32 quotient equals the float64 quotient rounded to float32 (a float64
  quotient of such integers never falls on a float32 rounding midpoint), so
  the sizes are identical (tests/data/test_eval_geometry.py checks every size
  up to 1500x1500).

  Args:
    height: int32 scalar, input height in pixels.
    width: int32 scalar, input width in pixels.
    min_size: resize value (see resize_spec) both sides must reach, or None.
    max_size: resize value both sides must fit in, or None.
    factor: if set, output sides are k * factor + 1.
    ratio_dtype: dtype of the scale ratios, tf.float64 or tf.float32.

  Returns:
    int32 [2] tensor, (height, width) in pixels.
  """
  height = tf.convert_to_tensor(height, tf.int32)
  width = tf.convert_to_tensor(width, tf.int32)
  min_size = resize_spec(min_size)
  max_size = resize_spec(max_size)
  if min_size:
    scale = tf.maximum(_ratio(min_size[0], height, ratio_dtype),
                       _ratio(min_size[1], width, ratio_dtype))
    height, width = _scaled(height, scale), _scaled(width, scale)
  if max_size:
    if factor:
      max_size = tuple(m - (m - 1) % factor for m in max_size)
    scale = tf.minimum(_ratio(max_size[0], height, ratio_dtype),
                       _ratio(max_size[1], width, ratio_dtype))
    scale = tf.minimum(tf.cast(scale, tf.float32), 1.0)
    height, width = _scaled(height, scale), _scaled(width, scale)
  size = tf.stack([height, width])
  if factor:
    size += (factor - (size - 1) % factor) % factor
  return size


def resize_image(image: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
  """Corner-aligned bilinear resize of a float32 [H, W, C] image.

  Args:
    image: float32 [H, W, C], e.g. RGB in 0..255.
    size: int32 [2], (height, width) in pixels.

  Returns:
    float32 [size[0], size[1], C].
  """
  return align_corners_resize.bilinear(image[tf.newaxis], size)[0]


def resize_label(label: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
  """Corner-aligned nearest-neighbour resize of an integer [H, W, C] map.

  Args:
    label: integer [H, W, C], e.g. int32 panoptic ids [H, W, 1].
    size: int32 [2], (height, width) in pixels.

  Returns:
    [size[0], size[1], C] in the label's dtype.
  """
  return align_corners_resize.nearest(label[tf.newaxis], size)[0]


def resize_to_range(image: tf.Tensor, label: Optional[tf.Tensor],
                    min_size: ResizeValue = None, max_size: ResizeValue = None,
                    factor: Optional[int] = None
                    ) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
  """Resizes image (float32) and label (int) to resize_to_range_size.

  Args:
    image: float32 [H, W, 3], RGB in 0..255.
    label: int32 [H, W, 1] panoptic ids, or None.
    min_size: see resize_to_range_size.
    max_size: see resize_to_range_size.
    factor: see resize_to_range_size.

  Returns:
    (image, label) at the new size; label None if none was given.
  """
  shape = tf.shape(image)
  size = resize_to_range_size(shape[0], shape[1], min_size, max_size, factor)
  image = resize_image(image, size)
  if label is not None:
    label = resize_label(label, size)
  return image, label


def pad_image_and_label(image: tf.Tensor, label: Optional[tf.Tensor],
                        offset_height, offset_width, target_height,
                        target_width, label_pad_value: int = 0
                        ) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
  """Pads to [target_height, target_width] with the image at the offsets.

  The image (float32) is padded with MEAN_PIXEL, the label with
  label_pad_value.

  Args:
    image: float32 [H, W, 3], RGB in 0..255.
    label: int32 [H, W, 1] panoptic ids, or None.
    offset_height: int32 scalar, rows of padding above the image.
    offset_width: int32 scalar, columns of padding left of the image.
    target_height: int32 scalar, output height in pixels (>= H + offset).
    target_width: int32 scalar, output width in pixels (>= W + offset).
    label_pad_value: panoptic id of padded label pixels (usually
      ignore_label * label_divisor).

  Returns:
    (image [target_height, target_width, 3], label [target_height,
    target_width, 1] or None).
  """
  shape = tf.shape(image)
  bottom = target_height - offset_height - shape[0]
  right = target_width - offset_width - shape[1]
  with tf.control_dependencies([
      tf.debugging.assert_non_negative(
          bottom, message="padding target is smaller than the image"),
      tf.debugging.assert_non_negative(
          right, message="padding target is smaller than the image")]):
    paddings = tf.stack([tf.stack([offset_height, bottom]),
                         tf.stack([offset_width, right]), [0, 0]])
  image = tf.pad(image - MEAN_PIXEL, paddings) + MEAN_PIXEL
  if label is not None:
    label = tf.pad(label, paddings, constant_values=label_pad_value)
  return image, label


def scale_choices(min_scale_factor: float, max_scale_factor: float,
                  step_size: float) -> Optional[tf.Tensor]:
  """The discrete scale factors min, min + step, ..., max (None: continuous).

  The count is DeepLab2's int((max - min) / step + 1), computed on the
  float32 config values, with a small tolerance so 0.3..1.7 by 0.1 gives 15.

  Args:
    min_scale_factor: smallest scale (image size multiplier).
    max_scale_factor: largest scale.
    step_size: distance between consecutive scales (> 0).

  Returns:
    float32 [num_steps] scales from min to max.
  """
  num_steps = int((max_scale_factor - min_scale_factor) / step_size + 1 + 1e-6)
  return tf.linspace(tf.constant(min_scale_factor, tf.float32),
                     tf.constant(max_scale_factor, tf.float32), num_steps)


def random_scale_factor(seed: tf.Tensor, min_scale_factor: float,
                        max_scale_factor: float,
                        step_size: float) -> Union[float, tf.Tensor]:
  """A random scale: one of the discrete steps, or uniform when step is 0.

  Args:
    seed: int [2] stateless random seed.
    min_scale_factor: smallest scale (image size multiplier, >= 0).
    max_scale_factor: largest scale (>= min_scale_factor).
    step_size: distance between the discrete scales; 0 draws uniformly.

  Returns:
    The Python float min_scale_factor when min == max, else a float32 scalar.
  """
  if min_scale_factor < 0 or min_scale_factor > max_scale_factor:
    raise ValueError(
        f"need 0 <= min_scale_factor ({min_scale_factor}) <= "
        f"max_scale_factor ({max_scale_factor})")
  if min_scale_factor == max_scale_factor:
    return float(min_scale_factor)
  if step_size == 0:
    return tf.random.stateless_uniform([], seed, min_scale_factor,
                                       max_scale_factor)
  choices = scale_choices(min_scale_factor, max_scale_factor, step_size)
  index = tf.random.stateless_uniform([], seed, 0, tf.shape(choices)[0],
                                      dtype=tf.int32)
  return choices[index]


def scale_image_and_label(image: tf.Tensor, label: Optional[tf.Tensor],
                          scale: Union[float, tf.Tensor]
                          ) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
  """Resizes to int32(float32([H, W]) * scale) (corner-aligned).

  Args:
    image: float32 [H, W, 3], RGB in 0..255.
    label: int32 [H, W, 1] panoptic ids, or None.
    scale: size multiplier, a float or float32 scalar; 1.0 returns the inputs.

  Returns:
    (image, label) resized (bilinear, resp. nearest neighbour).
  """
  if isinstance(scale, float) and scale == 1.0:
    return image, label
  shape = tf.cast(tf.shape(image)[:2], tf.float32)
  size = tf.cast(shape * tf.cast(scale, tf.float32), tf.int32)
  image = resize_image(image, size)
  if label is not None:
    label = resize_label(label, size)
  return image, label


def random_pad_and_crop(image: tf.Tensor, label: tf.Tensor, crop_height: int,
                        crop_width: int, label_pad_value: int,
                        seed: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Random crop of [crop_height, crop_width], padding smaller images.

  Sides shorter than the crop are first padded (image: MEAN_PIXEL, label:
  label_pad_value) to the crop size with the image at a random offset; then a
  random window of the crop size is cut out.

  Args:
    image: float32 [H, W, 3], RGB in 0..255.
    label: int32 [H, W, 1] panoptic ids.
    crop_height: output height in pixels.
    crop_width: output width in pixels.
    label_pad_value: panoptic id of padded label pixels.
    seed: int [2] stateless random seed.

  Returns:
    (image [crop_height, crop_width, 3], label [crop_height, crop_width, 1]).
  """
  pad_seed, crop_seed = tf.unstack(tf.random.experimental.stateless_split(
      seed, 2))
  shape = tf.shape(image)
  height, width = shape[0], shape[1]
  pad_offsets = tf.random.stateless_uniform(
      [2], pad_seed, minval=0,
      maxval=tf.int32.max, dtype=tf.int32) % tf.maximum(
          tf.stack([crop_height - height, crop_width - width]), 1)
  target_height = tf.maximum(height, crop_height)
  target_width = tf.maximum(width, crop_width)
  image, label = pad_image_and_label(image, label, pad_offsets[0],
                                     pad_offsets[1], target_height,
                                     target_width, label_pad_value)
  crop_offsets = tf.random.stateless_uniform(
      [2], crop_seed, minval=0, maxval=tf.int32.max,
      dtype=tf.int32) % tf.stack([target_height - crop_height + 1,
                                  target_width - crop_width + 1])
  image = tf.slice(image, tf.stack([crop_offsets[0], crop_offsets[1], 0]),
                   [crop_height, crop_width, -1])
  label = tf.slice(label, tf.stack([crop_offsets[0], crop_offsets[1], 0]),
                   [crop_height, crop_width, -1])
  image.set_shape([crop_height, crop_width, image.shape[-1]])
  label.set_shape([crop_height, crop_width, label.shape[-1]])
  return image, label


def random_flip(image: tf.Tensor, label: tf.Tensor, seed: tf.Tensor
                ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Flips both left-right with probability FLIP_PROBABILITY.

  Args:
    image: [H, W, C] image.
    label: [H, W, C'] label map.
    seed: int [2] stateless random seed.

  Returns:
    (image, label, flipped) with flipped a bool scalar.
  """
  flip = tf.random.stateless_uniform([], seed) < FLIP_PROBABILITY
  image = tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image)
  label = tf.cond(flip, lambda: tf.reverse(label, [1]), lambda: label)
  return image, label, flip
