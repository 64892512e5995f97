"""The float32 in-graph resize of kmax_tf.export equals DeepLab2's arithmetic.

Sizes are compared with kmax_tf.data.preprocessing (DeepLab2's float64 ratios)
exhaustively over all image sizes up to 1500x1500; nearest-neighbour gathers
with TF's corner-aligned ResizeNearestNeighbor kernel.
"""
import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.data import preprocessing
from kmax_tf.export import image_geometry


@pytest.mark.parametrize("min_size,max_size,factor", [
    ((641, 641), (641, 641), None),
    ((257, 257), (257, 257), None),
    ((1025, 2049), (1025, 2049), None),
    (None, (641, 641), None),
    ((513, 513), (641, 641), 32),
])
def test_resize_to_range_size_equals_float64_version(min_size, max_size, factor):
  grid = tf.range(1, 1501)
  height = tf.reshape(tf.tile(grid[:, None], [1, 1500]), [-1])
  width = tf.reshape(tf.tile(grid[None, :], [1500, 1]), [-1])
  ours = image_geometry.resize_to_range_size(height, width, min_size, max_size, factor)
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
    ours = image_geometry._nearest_indices(  # pylint: disable=protected-access
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
          image_geometry.crop_and_resize_nearest(maps, tf.constant(region),
                                                 tf.constant(size)).numpy(),
          _reference_nearest(maps[:, :region[0], :region[1]], size).numpy(),
          err_msg=f"region {region} -> {size}")


def test_pad_to_crop_matches_pipeline_padding():
  image = tf.random.stateless_uniform([1, 20, 31, 3], [3, 4], maxval=255.0)
  padded = image_geometry.pad_to_crop(image, (33, 40))
  expected, _ = preprocessing.pad_image_and_label(image[0], None, 0, 0, 33, 40)
  np.testing.assert_array_equal(padded.numpy()[0], expected.numpy())
  assert padded.shape.as_list() == [1, 33, 40, 3]
  np.testing.assert_array_equal(padded.numpy()[0, 20:], 127.5)
