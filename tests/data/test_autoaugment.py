"""AutoAugment colour operations against PIL, and the policy."""
import sys

import numpy as np
from PIL import Image
from PIL import ImageEnhance
from PIL import ImageOps
from PIL import ImageStat
import tensorflow as tf

from kmax_tf.data import autoaugment


def _image(seed=0, shape=(17, 23, 3)):
  return np.random.RandomState(seed).randint(20, 200, shape).astype(np.uint8)


def test_operations_match_pil():
  image = _image()
  pil = Image.fromarray(image)
  np.testing.assert_array_equal(autoaugment.equalize(tf.constant(image)),
                                np.array(ImageOps.equalize(pil)))
  np.testing.assert_array_equal(autoaugment.invert(tf.constant(image)),
                                np.array(ImageOps.invert(pil)))
  np.testing.assert_array_equal(autoaugment.posterize(tf.constant(image), 3),
                                np.array(ImageOps.posterize(pil, 3)))
  np.testing.assert_array_equal(autoaugment.solarize(tf.constant(image), 128),
                                np.array(ImageOps.solarize(pil, 128)))
  ours = autoaugment.autocontrast(tf.constant(image)).numpy().astype(int)
  assert np.abs(ours - np.array(ImageOps.autocontrast(pil))).max() <= 1


# PIL's ImageEnhance rounds where DeepLab2's operations truncate, and converts to grey with
# integer weights where TF uses float ones: at most 1 grey level apart (measured: 1).
ENHANCE_TOLERANCE = 1
FACTORS = (0.0, 0.1, 0.5, 1.0, 1.3, 1.9)


def _assert_close_to_pil(ours, reference, what):
  difference = np.abs(ours.numpy().astype(int) - np.asarray(reference).astype(int))
  assert difference.max() <= ENHANCE_TOLERANCE, (what, difference.max())


def test_enhance_operations_match_pil_image_enhance():
  for seed in range(3):
    image = _image(seed, (31, 37, 3))
    pil = Image.fromarray(image)
    for factor in FACTORS:
      for name, operation, enhancer in (("color", autoaugment.color, ImageEnhance.Color),
                                        ("brightness", autoaugment.brightness,
                                         ImageEnhance.Brightness),
                                        ("sharpness", autoaugment.sharpness,
                                         ImageEnhance.Sharpness)):
        _assert_close_to_pil(operation(tf.constant(image), factor),
                             enhancer(pil).enhance(factor), (name, seed, factor))
      np.testing.assert_array_equal(autoaugment.brightness(tf.constant(image), factor),
                                    np.array(ImageEnhance.Brightness(pil).enhance(factor)))


def test_contrast_is_pil_blend_with_deeplab2_grey_level():
  """DeepLab2's contrast blends with a flat grey of (pixel count / 256), not PIL's mean grey.

  Where the two levels coincide it equals PIL's ImageEnhance.Contrast; elsewhere it equals
  PIL's blend with DeepLab2's level.
  """
  # 64 x 64 pixels: DeepLab2's level is 4096 / 256 = 16; this image's mean grey rounds to 16.
  rng = np.random.RandomState(5)
  image = rng.randint(0, 33, (64, 64, 3)).astype(np.uint8)
  pil = Image.fromarray(image)
  assert int(ImageStat.Stat(pil.convert("L")).mean[0] + 0.5) == 16
  for factor in FACTORS:
    _assert_close_to_pil(autoaugment.contrast(tf.constant(image), factor),
                         ImageEnhance.Contrast(pil).enhance(factor), ("equal level", factor))
  image = _image(1, (31, 37, 3))
  pil = Image.fromarray(image)
  level = int(31 * 37 / 256.0)
  flat = Image.new("RGB", pil.size, (level, level, level))
  for factor in FACTORS:
    _assert_close_to_pil(autoaugment.contrast(tf.constant(image), factor),
                         Image.blend(flat, pil, factor), ("deeplab2 level", factor))


def test_enhance_edge_cases():
  image = tf.constant(_image(1))
  for operation in (autoaugment.color, autoaugment.contrast,
                    autoaugment.brightness, autoaugment.sharpness):
    np.testing.assert_array_equal(operation(image, 1.0), image)
  grey = autoaugment.color(image, 0.0).numpy()
  assert np.all(grey[..., 0] == grey[..., 1])
  # Sharpness keeps the border pixels.
  sharp = autoaugment.sharpness(image, 1.9).numpy()
  np.testing.assert_array_equal(sharp[0], image.numpy()[0])


def test_simple_classification_policy():
  policy = autoaugment.POLICIES["simple_classification_policy"]
  assert policy == [
      [("Sharpness", 0.4, 7), ("Brightness", 0.2, 10)],
      [("Equalize", 0.0, 9), ("Contrast", 0.2, 10)],
      [("Sharpness", 0.2, 9), ("Color", 0.2, 9)],
      [("Solarize", 0.2, 7), ("Equalize", 0.6, 9)],
      [("Sharpness", 0.2, 1), ("Equalize", 0.2, 1 * 7)]]
  scaled = autoaugment.POLICIES[
      "simple_classification_policy_magnitude_scale_0.2"]
  assert scaled[0][0] == ("Sharpness", 0.4, 7 * 0.2)


def test_apply_policy_is_seeded():
  image = tf.constant(_image(2))
  outputs = [autoaugment.apply_policy(
      image, "simple_classification_policy", tf.constant([s, 0], tf.int64))
             for s in range(12)]
  again = autoaugment.apply_policy(image, "simple_classification_policy",
                                   tf.constant([3, 0], tf.int64))
  np.testing.assert_array_equal(outputs[3], again)
  changed = sum(not np.array_equal(o, image) for o in outputs)
  assert 0 < changed < 12
  assert "tensorflow_addons" not in sys.modules
