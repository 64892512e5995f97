"""Tests for ResizedFuse (MaX-DeepLab / kMaX-DeepLab skip-connection fuser)."""
import numpy as np
import tensorflow as tf
import tf_keras

from kmax_tf.layers import align_corners_resize
from kmax_tf.layers import resized_fuse
from kmax_tf.testing import layer_checks


def _inputs():
  rng = np.random.RandomState(0)
  return [
      tf.constant(rng.randn(2, 9, 9, 16), tf.float32),   # low-res, needs conv + resize
      tf.constant(rng.randn(2, 17, 17, 12), tf.float32),  # target size, needs conv
      tf.constant(rng.randn(2, 33, 33, 12), tf.float32),  # (33 + 1) // 2 = 17: strided conv
      tf.constant(rng.randn(2, 9, 9, 8), tf.float32),     # right width: resize only
  ]


def test_branches_and_shapes():
  layer = resized_fuse.ResizedFuse(17, 17, 8, activation="gelu", name="fuse")
  out = layer(_inputs(), training=False)
  assert out.shape == (2, 17, 17, 8)
  assert layer.projection_kinds == ["resized", "resized", "strided", "identity"]
  assert layer.projections[3] is None
  assert layer.projections[2].strides == 2
  assert layer.projections[0].name == "resized_conv_bn1"
  assert layer.projections[2].name == "strided_conv_bn3"
  # 3 projections x (kernel + 4 BN variables).
  assert len(layer.weights) == 15


def test_matches_manual_computation():
  inputs = _inputs()
  layer = resized_fuse.ResizedFuse(17, 17, 8, activation="gelu")
  layer(inputs)
  layer_checks.randomize_weights(layer)
  out = layer(inputs, training=False).numpy()

  gelu = lambda x: tf.nn.gelu(x, approximate=False)

  def conv_bn(conv_bn_layer, x, strides=1):
    kernel, gamma, beta, mean, var = [w.numpy() for w in conv_bn_layer.weights]
    y = tf.nn.conv2d(x, kernel, strides, "VALID")
    return (y - mean) / np.sqrt(var + 1e-3) * gamma + beta

  def resize(x):
    return tf.compat.v1.image.resize_bilinear(x, [17, 17], align_corners=True)

  p = layer.projections
  expected = (resize(conv_bn(p[0], gelu(inputs[0])))
              + conv_bn(p[1], gelu(inputs[1]))
              + conv_bn(p[2], gelu(inputs[2]), strides=2)
              + resize(inputs[3]))
  np.testing.assert_allclose(out, expected.numpy(), rtol=1e-5, atol=1e-4)


def test_get_config_round_trip():
  inputs = _inputs()
  layer = resized_fuse.ResizedFuse(17, 17, 8, activation="gelu", name="fuse")
  layer(inputs)
  layer_checks.randomize_weights(layer)
  config = layer.get_config()
  clone = resized_fuse.ResizedFuse.from_config(config)
  assert clone.get_config() == config
  clone(inputs)
  assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]
  clone.set_weights(layer.get_weights())
  np.testing.assert_array_equal(clone(inputs).numpy(), layer(inputs).numpy())
  # Registered under the package name for Keras deserialization.
  assert tf_keras.utils.get_registered_object("kmax_tf>ResizedFuse") is resized_fuse.ResizedFuse


def test_two_pass_resize_order_for_narrow_tensors():
  # DeepLab2 interpolates the height first for <= 32 channels; the fused
  # single-pass kernel interpolates the width first and rounds differently.
  rng = np.random.RandomState(2)
  x = tf.constant(rng.randn(1, 9, 7, 32), tf.float32)
  ours = align_corners_resize.resize_features(x, (17, 13)).numpy()
  h = tf.compat.v1.image.resize_bilinear(tf.transpose(x, [0, 3, 1, 2]), [32, 17],
                                         align_corners=True)
  w = tf.compat.v1.image.resize_bilinear(tf.transpose(h, [0, 1, 3, 2]), [32, 13],
                                         align_corners=True)
  np.testing.assert_array_equal(ours, tf.transpose(w, [0, 3, 2, 1]).numpy())
  wide = tf.constant(rng.randn(1, 9, 7, 33), tf.float32)
  np.testing.assert_array_equal(
      align_corners_resize.resize_features(wide, (17, 13)).numpy(),
      tf.compat.v1.image.resize_bilinear(wide, [17, 13], align_corners=True).numpy())
  same = align_corners_resize.resize_features(x, (9, 7))
  assert same is x
