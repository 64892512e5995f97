"""Bad requests at the exported signatures fail with InvalidArgument and a clear message.

After every rejected request the same loaded model answers a good request
with the same result as before (nothing is left in a broken state).
"""
import os

import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.testing import deeplab2_fixtures as fx

pytestmark = pytest.mark.xdist_group("small_export")

PHOTO = os.path.join(fx.fixtures_dir(), "coco_val2017_16", "val2017", "000000037777.jpg")


@pytest.fixture(scope="module")
def loaded(small_export):
  return tf.saved_model.load(small_export)


@pytest.fixture(scope="module")
def good(loaded):
  image = tf.io.decode_image(tf.io.read_file(PHOTO), channels=3)[tf.newaxis]
  result = loaded.signatures["serving_default"](images=image)
  return image, result["panoptic_pred"].numpy()


def _uint8(shape):
  return tf.zeros(shape, tf.uint8)


def _png(height, width):
  return tf.io.encode_png(tf.zeros([height, width, 3], tf.uint8)).numpy()


PIXEL_CASES = {
    "rank 3": (_uint8([40, 60, 3]), "must have rank 4"),
    "rank 5": (_uint8([1, 1, 40, 60, 3]), "must have rank 4"),
    "wrong dtype": (tf.zeros([1, 40, 60, 3], tf.float32), "expected to be a uint8 tensor"),
    "4 channels": (_uint8([1, 40, 60, 4]), "must have 3 channels"),
    "zero height": (_uint8([1, 0, 60, 3]), "zero-size image"),
    "zero width": (_uint8([1, 40, 0, 3]), "zero-size image"),
    "too large": (_uint8([1, 1001, 8, 3]), "larger than the configured maximum of 1000"),
    "empty batch": (_uint8([0, 40, 60, 3]), "empty batch"),
}

BYTES_CASES = {
    "not an image": ([b"this is not an image"], "not a JPEG or PNG image"),
    "empty string": ([b""], "not a JPEG or PNG image"),
    "truncated JPEG": ([open(PHOTO, "rb").read()[:600]], "jpeg"),
    "too large": ([_png(4, 1001)], "larger than the configured maximum of 1000"),
    "empty batch": ([], "empty batch"),
    "rank 2": ([[_png(4, 4)]], "1-D batch"),
}


def _assert_still_serving(loaded, good):
  image, expected = good
  result = loaded.signatures["serving_default"](images=image)
  np.testing.assert_array_equal(result["panoptic_pred"].numpy(), expected)


@pytest.mark.parametrize("signature", ["serving_default", "serve_logits"])
@pytest.mark.parametrize("case", sorted(PIXEL_CASES))
def test_bad_pixel_request(loaded, good, signature, case):
  images, message = PIXEL_CASES[case]
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    loaded.signatures[signature](images=images)
  _assert_still_serving(loaded, good)


@pytest.mark.parametrize("case", sorted(BYTES_CASES))
def test_bad_bytes_request(loaded, good, case):
  values, message = BYTES_CASES[case]
  with pytest.raises(tf.errors.InvalidArgumentError, match=f"(?i){message}"):
    loaded.signatures["serve_image_bytes"](image_bytes=tf.constant(values, tf.string))
  _assert_still_serving(loaded, good)


def test_good_bytes_after_bad(loaded, good):
  with pytest.raises(tf.errors.InvalidArgumentError):
    loaded.signatures["serve_image_bytes"](
        image_bytes=tf.constant([open(PHOTO, "rb").read(), b"junk"]))
  result = loaded.signatures["serve_image_bytes"](
      image_bytes=tf.constant([open(PHOTO, "rb").read()]))
  np.testing.assert_array_equal(result["panoptic_pred"].numpy(), good[1])
