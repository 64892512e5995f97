"""Resize/pad/scale/crop/flip arithmetic and invariants."""
import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.data import preprocessing


@pytest.mark.parametrize("size, expected", [
    ((230, 352), (418, 641)),  # the two images of DeepLab2's pipeline fixture
    ((480, 640), (481, 641)),
    ((641, 641), (641, 641)),
    ((100, 1300), (49, 641)),  # max bound wins over min
])
def test_resize_to_range_size(size, expected):
  out = preprocessing.resize_to_range_size(size[0], size[1], 641, 641)
  assert tuple(out.numpy()) == expected


def test_resize_to_range_size_options():
  # Only a maximum: never upscales.
  assert tuple(preprocessing.resize_to_range_size(100, 200, None,
                                                  641).numpy()) == (100, 200)
  # A factor: sides become multiples of 32 plus one, within the maximum.
  out = preprocessing.resize_to_range_size(480, 640, 600, 600, factor=32)
  assert all((v - 1) % 32 == 0 and v <= 600 for v in out.numpy())
  assert preprocessing.resize_spec([0]) is None
  assert preprocessing.resize_spec(5) == (5, 5)
  assert preprocessing.resize_spec([3, 4]) == (3, 4)


def test_resize_keeps_label_values_and_aligns_corners():
  label = tf.constant(np.arange(12, dtype=np.int32).reshape(3, 4, 1))
  image = tf.cast(label, tf.float32) * tf.ones([1, 1, 3])
  image2, label2 = preprocessing.resize_to_range(image, label, 5, 7)
  assert label2.shape == (5, 6, 1)  # 3x4 scaled by 5/3
  assert set(np.unique(label2)) <= set(range(12))
  # Corner-aligned: corners copy the input corners exactly.
  for y, x in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
    assert label2[y, x, 0] == label[y, x, 0]
    assert image2[y, x, 0] == image[y, x, 0]


def test_pad_uses_mean_pixel_and_label_value():
  image = tf.fill([2, 3, 3], 10.0)
  label = tf.ones([2, 3, 1], tf.int32)
  padded, padded_label = preprocessing.pad_image_and_label(
      image, label, 1, 2, 5, 6, label_pad_value=255)
  assert padded.shape == (5, 6, 3)
  assert np.all(padded.numpy()[1:3, 2:5] == 10.0)
  assert np.sum(padded.numpy() == 127.5) == (30 - 6) * 3
  assert np.all(padded_label.numpy()[1:3, 2:5] == 1)
  assert np.sum(padded_label.numpy() == 255) == 30 - 6


def test_scale_choices_and_random_scale():
  f32 = lambda v: float(np.float32(v))
  choices = preprocessing.scale_choices(f32(0.3), f32(1.7), f32(0.1))
  assert choices.shape == (15,)
  np.testing.assert_allclose(choices, np.linspace(0.3, 1.7, 15), atol=1e-6)
  drawn = {float(preprocessing.random_scale_factor(
      tf.constant([s, 0], tf.int64), 0.5, 2.0, 0.5)) for s in range(40)}
  assert drawn == {0.5, 1.0, 1.5, 2.0}
  continuous = preprocessing.random_scale_factor(
      tf.constant([1, 2], tf.int64), 0.5, 2.0, 0.0)
  assert 0.5 <= float(continuous) < 2.0
  assert preprocessing.random_scale_factor(None, 1.0, 1.0, 0.25) == 1.0
  with pytest.raises(ValueError):
    preprocessing.random_scale_factor(None, 2.0, 1.0, 0.25)


def test_scale_size_truncates():
  image, label = preprocessing.scale_image_and_label(
      tf.zeros([10, 15, 3]), tf.zeros([10, 15, 1], tf.int32), 0.75)
  assert image.shape == (7, 11, 3) and label.shape == (7, 11, 1)


def test_random_crop_windows_cover_the_image():
  values = np.arange(20 * 30, dtype=np.int32).reshape(20, 30, 1)
  image = tf.cast(tf.constant(values), tf.float32) * tf.ones([1, 1, 3])
  corners = set()
  for seed in range(30):
    cropped, label = preprocessing.random_pad_and_crop(
        image, tf.constant(values), 8, 9, 0, tf.constant([seed, 3], tf.int64))
    top_left = int(label[0, 0, 0])
    y, x = divmod(top_left, 30)
    np.testing.assert_array_equal(label[..., 0], values[y:y + 8, x:x + 9, 0])
    np.testing.assert_array_equal(cropped[..., 0], label[..., 0])
    corners.add((y, x))
  assert len(corners) > 20
  assert all(0 <= y <= 12 and 0 <= x <= 21 for y, x in corners)


def test_random_flip_flips_image_and_label_together():
  image = tf.reshape(tf.range(12, dtype=tf.float32), [1, 4, 3])
  label = tf.reshape(tf.range(4), [1, 4, 1])
  outcomes = set()
  for seed in range(20):
    flipped, flipped_label, was_flipped = preprocessing.random_flip(
        image, label, tf.constant([seed, 0], tf.int64))
    np.testing.assert_array_equal(flipped[..., 0] // 3, flipped_label[..., 0])
    outcomes.add(bool(was_flipped))
  assert outcomes == {True, False}
