"""AutoAugment colour policies used by kMaX-DeepLab, in core TensorFlow ops.

AutoAugment: Cubuk et al., "AutoAugment: Learning Augmentation Policies from
Data", CVPR 2019; RandAugment: Cubuk et al., CVPR 2020 (the reduced operation
space used here).

The policies only change pixel values, never geometry, so labels pass through
unchanged. Each policy is a list of sub-policies; one sub-policy is drawn
uniformly per image and each of its two operations is applied with its
probability. Operation semantics follow PIL's ImageOps / ImageEnhance on uint8
images, as DeepLab2 implements them; randomness is stateless (explicit seed).

Why not tf-models-official's `official.vision.ops.augment` (measured on the 16
COCO fixture images at levels 0, 1, 3, 5, 7, 9, 10, 0.2, 1.4, 1.8, 2.0):
  - AutoContrast, Equalize, Invert, Posterize, Solarize, Color, Brightness and
    Sharpness give the same pixels (0 grey levels apart), its `level_to_arg`
    gives the same arguments for levels 0-10 (step 0.2), and its
    `AutoAugment.panoptic_deeplab_policy` is our magnitude-0.2 policy;
  - its `contrast` is `tf.image.adjust_contrast` (blend toward each channel's
    mean), DeepLab2's blends toward the grey level min(pixel count / 256, 255):
    up to 187 grey levels apart, 87.5% of pixels differ on average;
  - importing it loads Keras 3, pandas, scikit-learn, matplotlib, OpenCV and
    tensorflow_datasets into the trainer (+195 MB resident, +2154 modules),
    which kmax_tf.runtime.lean_import exists to avoid;
  - its policies draw with stateful `tf.random.uniform`, so they cannot be
    replayed from a seed.
tests/test_model_garden_equivalents.py checks these facts.
"""

from typing import Callable, Dict, List, Sequence, Tuple

import tensorflow as tf

_MAX_LEVEL = 10.0
# Probabilities are indexed 0..5 in the policy encoding.
_PROBABILITIES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
# The reduced operation space, indexed by the policy encoding.
_OPERATIONS = ("AutoContrast", "Equalize", "Invert", "Posterize", "Solarize",
               "Color", "Contrast", "Brightness", "Sharpness")
# kMaX-DeepLab's policy: 5 sub-policies x 2 (operation, probability, level).
_SIMPLE_CLASSIFICATION_POLICY = (8, 2, 7, 7, 1, 10,
                                 1, 0, 9, 6, 1, 10,
                                 8, 1, 9, 5, 1, 9,
                                 4, 1, 7, 1, 3, 9,
                                 8, 1, 1, 1, 1, 7)

SubPolicy = List[Tuple[str, float, float]]


def _decode_policy(encoded: Sequence[int],
                   magnitude_scale: float) -> List[SubPolicy]:
  policy = []
  for start in range(0, len(encoded), 6):
    sub_policy = []
    for op_start in (start, start + 3):
      op, probability, level = encoded[op_start:op_start + 3]
      sub_policy.append((_OPERATIONS[op], _PROBABILITIES[probability],
                         level * magnitude_scale))
    policy.append(sub_policy)
  return policy


POLICIES: Dict[str, List[SubPolicy]] = {
    "simple_classification_policy": _decode_policy(
        _SIMPLE_CLASSIFICATION_POLICY, 1.0),
    "simple_classification_policy_magnitude_scale_0.2": _decode_policy(
        _SIMPLE_CLASSIFICATION_POLICY, 0.2),
}


def _blend(image1: tf.Tensor, image2: tf.Tensor, factor: float) -> tf.Tensor:
  """image1 + factor * (image2 - image1), clipped to uint8 when extrapolating."""
  if factor == 0.0:
    return image1
  if factor == 1.0:
    return image2
  start = tf.cast(image1, tf.float32)
  blended = start + factor * (tf.cast(image2, tf.float32) - start)
  if 0.0 < factor < 1.0:
    return tf.cast(blended, tf.uint8)
  return tf.cast(tf.clip_by_value(blended, 0.0, 255.0), tf.uint8)


def autocontrast(image: tf.Tensor) -> tf.Tensor:
  """Stretches each channel so its darkest value is 0 and brightest 255."""
  def stretch(channel):
    low = tf.cast(tf.reduce_min(channel), tf.float32)
    high = tf.cast(tf.reduce_max(channel), tf.float32)

    def scaled():
      scale = 255.0 / (high - low)
      values = tf.cast(channel, tf.float32) * scale - low * scale
      return tf.cast(tf.clip_by_value(values, 0.0, 255.0), tf.uint8)
    return tf.cond(high > low, scaled, lambda: channel)
  return tf.stack([stretch(image[..., c]) for c in range(3)], axis=-1)


def equalize(image: tf.Tensor) -> tf.Tensor:
  """Histogram equalization of each channel (PIL's ImageOps.equalize)."""
  def equalize_channel(channel):
    values = tf.cast(channel, tf.int32)
    histogram = tf.histogram_fixed_width(values, [0, 255], nbins=256)
    nonzero = tf.boolean_mask(histogram, histogram > 0)
    step = (tf.reduce_sum(nonzero) - nonzero[-1]) // 255

    def mapped():
      lut = (tf.cumsum(histogram) + step // 2) // tf.maximum(step, 1)
      lut = tf.clip_by_value(tf.concat([[0], lut[:-1]], 0), 0, 255)
      return tf.gather(lut, values)
    return tf.cast(tf.cond(step > 0, mapped, lambda: values), tf.uint8)
  return tf.stack([equalize_channel(image[..., c]) for c in range(3)],
                  axis=-1)


def invert(image: tf.Tensor) -> tf.Tensor:
  return 255 - image


def posterize(image: tf.Tensor, bits: int) -> tf.Tensor:
  """Keeps the `bits` most significant bits of each value."""
  shift = 8 - bits
  return tf.bitwise.left_shift(tf.bitwise.right_shift(image, shift), shift)


def solarize(image: tf.Tensor, threshold: int) -> tf.Tensor:
  """Inverts the values at or above `threshold`."""
  return tf.where(image < threshold, image, 255 - image)


def color(image: tf.Tensor, factor: float) -> tf.Tensor:
  """Saturation: blends with the grey version of the image."""
  grey = tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image))
  return _blend(grey, image, factor)


def contrast(image: tf.Tensor, factor: float) -> tf.Tensor:
  """Blends with a flat grey image (DeepLab2's contrast operation)."""
  grey = tf.cast(tf.image.rgb_to_grayscale(image), tf.int32)
  histogram = tf.histogram_fixed_width(grey, [0, 255], nbins=256)
  # DeepLab2 (like the TPU AutoAugment code it derives from) uses the pixel
  # count / 256 as the grey level, not PIL's mean grey value; kept for parity.
  mean = tf.reduce_sum(tf.cast(histogram, tf.float32)) / 256.0
  flat = tf.cast(tf.clip_by_value(tf.ones_like(grey, tf.float32) * mean, 0.0,
                                  255.0), tf.uint8)
  return _blend(tf.image.grayscale_to_rgb(flat), image, factor)


def brightness(image: tf.Tensor, factor: float) -> tf.Tensor:
  return _blend(tf.zeros_like(image), image, factor)


def sharpness(image: tf.Tensor, factor: float) -> tf.Tensor:
  """Blends with a smoothed image (PIL's SMOOTH kernel; borders unchanged)."""
  kernel = tf.constant([[1, 1, 1], [1, 5, 1], [1, 1, 1]], tf.float32) / 13.0
  kernel = tf.tile(kernel[:, :, tf.newaxis, tf.newaxis], [1, 1, 3, 1])
  smooth = tf.nn.depthwise_conv2d(tf.cast(image, tf.float32)[tf.newaxis],
                                  kernel, [1, 1, 1, 1], padding="VALID")
  smooth = tf.cast(tf.clip_by_value(smooth[0], 0.0, 255.0), tf.uint8)
  inside = tf.pad(tf.ones_like(smooth, tf.bool), [[1, 1], [1, 1], [0, 0]])
  degenerate = tf.where(inside, tf.pad(smooth, [[1, 1], [1, 1], [0, 0]]),
                        image)
  return _blend(degenerate, image, factor)


def _enhance_factor(level: float) -> float:
  return (level / _MAX_LEVEL) * 1.8 + 0.1


def _operation(name: str, level: float) -> Callable[[tf.Tensor], tf.Tensor]:
  """The uint8 image -> uint8 image function of an operation at a level."""
  if name == "AutoContrast":
    return autocontrast
  if name == "Equalize":
    return equalize
  if name == "Invert":
    return invert
  if name == "Posterize":
    return lambda image: posterize(image, int((level / _MAX_LEVEL) * 4))
  if name == "Solarize":
    return lambda image: solarize(image, int((level / _MAX_LEVEL) * 256))
  enhance = {"Color": color, "Contrast": contrast, "Brightness": brightness,
             "Sharpness": sharpness}[name]
  factor = _enhance_factor(level)
  return lambda image: enhance(image, factor)


def apply_policy(image: tf.Tensor, policy_name: str,
                 seed: tf.Tensor) -> tf.Tensor:
  """Applies one random sub-policy of `policy_name` to a uint8 RGB image.

  Args:
    image: uint8 [H, W, 3].
    policy_name: A key of POLICIES.
    seed: [2] int seed of the stateless random choices.

  Returns:
    The augmented uint8 image.
  """
  if policy_name not in POLICIES:
    raise ValueError(f"Unknown autoaugment policy {policy_name!r}; known: "
                     f"{sorted(POLICIES)}")
  policy = POLICIES[policy_name]
  seeds = tf.random.experimental.stateless_split(seed, 1 + 2 * len(policy))
  chosen = tf.random.stateless_uniform([], seeds[0], 0, len(policy),
                                       dtype=tf.int32)
  for index, sub_policy in enumerate(policy):
    def run(sub_policy=sub_policy, index=index, image=image):
      for op_index, (name, probability, level) in enumerate(sub_policy):
        operation = _operation(name, level)
        draw = tf.random.stateless_uniform(
            [], seeds[1 + 2 * index + op_index])
        # floor(u + p) is 1 with probability p (DeepLab2's rule).
        apply = tf.floor(draw + probability) > 0
        image = tf.cond(apply, lambda op=operation, x=image: op(x),
                        lambda x=image: x)
      return image
    image = tf.cond(tf.equal(chosen, index), run, lambda image=image: image)
  return image
