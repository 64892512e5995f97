"""AutoAugment colour operations against PIL, and the policy."""
import sys

import numpy as np
from PIL import Image
from PIL import ImageOps
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


def test_enhance_operations():
  image = tf.constant(_image(1))
  for operation in (autoaugment.color, autoaugment.contrast,
                    autoaugment.brightness, autoaugment.sharpness):
    np.testing.assert_array_equal(operation(image, 1.0), image)
    out = operation(image, 1.9)
    assert out.dtype == tf.uint8 and out.shape == image.shape
  np.testing.assert_array_equal(autoaugment.brightness(image, 0.0), 0)
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
