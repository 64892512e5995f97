"""strided_downsample: keeps every s-th label, rejects non-integer strides."""
import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.losses.strided_downsample import strided_downsample


def test_keeps_every_stride_pixel():
  labels = np.arange(2 * 257 * 257).reshape(2, 257, 257)
  out = strided_downsample(tf.constant(labels), (65, 65)).numpy()
  np.testing.assert_array_equal(out, labels[:, ::4, ::4])
  same = strided_downsample(tf.constant(labels), (257, 257))
  np.testing.assert_array_equal(same.numpy(), labels)


@pytest.mark.parametrize("size", [(64, 64), (65, 33)])
def test_rejects_bad_sizes(size):
  with pytest.raises(ValueError):
    strided_downsample(tf.zeros([1, 257, 257]), size)
