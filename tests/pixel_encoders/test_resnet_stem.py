"""Tests for ResNetStem (DeepLab2's 'resnet' stem: 7x7/2 conv + BN)."""
import numpy as np
import tensorflow as tf
import tf_keras

from kmax_tf.pixel_encoders import resnet_stem


def test_shape_padding_and_no_activation():
  stem = resnet_stem.ResNetStem(8)
  x = tf.random.normal([1, 13, 13, 3], seed=0)
  out = stem(x, training=False)
  assert out.shape == (1, 7, 7, 8)
  assert stem.conv_bn.conv.kernel.shape == (7, 7, 3, 8)
  # Symmetric padding of 3 (DeepLab2's Conv2DSame), BN at identity init, no activation.
  kernel = stem.conv_bn.conv.kernel
  expected = tf.nn.conv2d(tf.pad(x, [[0, 0], [3, 3], [3, 3], [0, 0]]), kernel, 2, "VALID")
  np.testing.assert_allclose(out, expected / np.sqrt(1 + 1e-3), rtol=1e-5, atol=1e-5)
  assert (out.numpy() < 0).any()


def test_get_config_round_trip():
  stem = resnet_stem.ResNetStem(8, name="stem")
  x = tf.random.normal([1, 9, 9, 3])
  stem(x)
  clone = tf_keras.layers.deserialize(tf_keras.layers.serialize(stem))
  assert clone.get_config() == stem.get_config()
  clone(x)
  clone.set_weights(stem.get_weights())
  np.testing.assert_array_equal(clone(x, training=False), stem(x, training=False))
