"""Eval-time geometry equals DeepLab2's arithmetic and TF's kernels.

Sizes computed with float32 ratios (what TFLite can run) are compared with
DeepLab2's float64 ratios exhaustively over all image sizes up to 1500x1500;
nearest-neighbour gathers with TF's corner-aligned ResizeNearestNeighbor kernel.
"""
import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.data import preprocessing
from kmax_tf.data import eval_geometry


@pytest.mark.parametrize("min_size,max_size,factor", [
    ((641, 641), (641, 641), None),
    ((257, 257), (257, 257), None),
    ((1025, 2049), (1025, 2049), None),
    (None, (641, 641), None),
    ((513, 513), (641, 641), 32),
])
def test_float32_ratios_give_the_float64_sizes(min_size, max_size, factor):
  grid = tf.range(1, 1501)
  height = tf.reshape(tf.tile(grid[:, None], [1, 1500]), [-1])
  width = tf.reshape(tf.tile(grid[None, :], [1500, 1]), [-1])
  ours = preprocessing.resize_to_range_size(height, width, min_size, max_size, factor,
                                            ratio_dtype=tf.float32)
  reference = preprocessing.resize_to_range_size(height, width, min_size, max_size, factor)
  np.testing.assert_array_equal(ours.numpy(), reference.numpy())


def _reference_nearest(maps, size):
  resized = tf.raw_ops.ResizeNearestNeighbor(images=maps[..., tf.newaxis], size=size,
                                             align_corners=True, half_pixel_centers=False)
  return resized[..., 0]


def test_nearest_indices_equal_tf_kernel():
  pairs = [(i, o) for i in range(1, 40) for o in range(1, 200, 7)]
  pairs += [(i, o) for i in (129, 257, 417, 641, 1025) for o in range(1, 4097, 151)]
  for in_size, out_size in pairs:
    ours = eval_geometry._nearest_indices(  # pylint: disable=protected-access
        tf.constant(in_size), tf.constant(out_size)).numpy()
    column = tf.reshape(tf.range(in_size), [1, in_size, 1])
    expected = _reference_nearest(column, [out_size, 1]).numpy()[0, :, 0]
    np.testing.assert_array_equal(ours, expected, err_msg=f"{in_size} -> {out_size}")


@pytest.mark.parametrize("dtype", [tf.int32, tf.float32])
def test_crop_and_resize_nearest_equals_slice_then_tf_kernel(dtype):
  maps = tf.cast(tf.random.stateless_uniform([2, 37, 53], [1, 2], maxval=1000, dtype=tf.int32),
                 dtype)
  for region in ([37, 53], [20, 53], [37, 9], [1, 1]):
    for size in ([37, 53], [100, 7], [480, 640], [1, 1]):
      np.testing.assert_array_equal(
          eval_geometry.crop_and_resize_nearest(maps, tf.constant(region),
                                                tf.constant(size)).numpy(),
          _reference_nearest(maps[:, :region[0], :region[1]], size).numpy(),
          err_msg=f"region {region} -> {size}")


def test_pad_to_crop_matches_pipeline_padding():
  image = tf.random.stateless_uniform([1, 20, 31, 3], [3, 4], maxval=255.0)
  padded = eval_geometry.pad_to_crop(image, (33, 40))
  expected, _ = preprocessing.pad_image_and_label(image[0], None, 0, 0, 33, 40)
  np.testing.assert_array_equal(padded.numpy()[0], expected.numpy())
  assert padded.shape.as_list() == [1, 33, 40, 3]
  np.testing.assert_array_equal(padded.numpy()[0, 20:], 127.5)


def test_fitted_size_leaves_the_image_alone_without_resize_values():
  np.testing.assert_array_equal(eval_geometry.fitted_size([30, 40], None, None), [30, 40])
  np.testing.assert_array_equal(eval_geometry.fitted_size([30, 40], [], [0, 0]), [30, 40])
  np.testing.assert_array_equal(eval_geometry.fitted_size([100, 50], (129, 129), (129, 129)),
                                [129, 64])


def test_to_crop_is_the_pipeline_resize_then_padding():
  image = tf.random.stateless_uniform([1, 30, 47, 3], [5, 6], maxval=255, dtype=tf.int32)
  image = tf.cast(image, tf.uint8)
  resized = tf.constant([41, 64])
  ours = eval_geometry.to_crop(image, resized, (65, 65))
  expected = preprocessing.resize_image(tf.cast(image[0], tf.float32), resized)
  expected, _ = preprocessing.pad_image_and_label(expected, None, 0, 0, 65, 65)
  np.testing.assert_array_equal(ours.numpy()[0], expected.numpy())
