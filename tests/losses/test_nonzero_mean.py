"""nonzero_mean: mean over non-zero elements, top-k, empty images."""
import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.losses.nonzero_mean import nonzero_mean


def test_mean_over_nonzero_and_empty_image():
  losses = tf.constant([[1.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
  np.testing.assert_array_equal(nonzero_mean(losses).numpy(), [2.0, 0.0])


def test_top_k_rounds_half_to_even():
  losses = tf.constant([[4.0, 3.0, 2.0, 1.0, 0.5, 0.25, 0.125, 0.0, 0.0, 0.0]])
  # 0.25 * 10 = 2.5 -> 2 elements (round half to even), as DeepLab2.
  np.testing.assert_allclose(nonzero_mean(losses, 0.25).numpy(), [3.5])
  # 0.35 * 10 = 3.5 -> 4 elements; all dimensions but the batch are flattened.
  np.testing.assert_allclose(nonzero_mean(tf.reshape(losses, [1, 2, 5]), 0.35).numpy(), [2.5])


def test_rejects_bad_percentage():
  with pytest.raises(ValueError, match="top_k_percent"):
    nonzero_mean(tf.zeros([1, 3]), 1.5)
