"""Tests for InceptionStem (DeepLab2's 'resnet_beta' stem: three 3x3 convs)."""
import numpy as np
import tensorflow as tf
import tf_keras

from kmax_tf.pixel_encoders import inception_stem


def test_shapes_and_sublayers():
  stem = inception_stem.InceptionStem(8, activation="gelu")
  out = stem(tf.zeros([2, 13, 13, 3]), training=False)
  assert out.shape == (2, 7, 7, 16)
  assert stem.conv1_bn_act.strides == 2 and stem.conv1_bn_act.activation == "gelu"
  assert stem.conv2_bn_act.strides == 1 and stem.conv2_bn_act.activation == "gelu"
  assert stem.conv3_bn.activation is None and stem.conv3_bn.filters == 16


def test_get_config_round_trip():
  stem = inception_stem.InceptionStem(8, activation="relu", name="stem")
  x = tf.random.normal([1, 9, 9, 3])
  stem(x)
  clone = tf_keras.layers.deserialize(tf_keras.layers.serialize(stem))
  assert clone.get_config() == stem.get_config()
  clone(x)
  clone.set_weights(stem.get_weights())
  np.testing.assert_array_equal(clone(x, training=False), stem(x, training=False))
