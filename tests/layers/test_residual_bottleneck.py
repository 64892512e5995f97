"""ResidualBottleneck: the shortcut rules shared by BottleneckBlock and AxialBlock."""
import numpy as np
import tensorflow as tf

from kmax_tf.layers import residual_bottleneck


class _ZeroResidual(residual_bottleneck.ResidualBottleneck):
  """Residual branch of zeros, so the output is the shortcut alone."""

  def _residual(self, x, training):
    x = x[:, ::self.strides, ::self.strides, :1] * 0.0
    return tf.tile(x, [1, 1, 1, self.output_channels])


def _input(channels):
  return tf.constant(np.random.RandomState(0).randn(2, 8, 8, channels), tf.float32)


def test_same_channels_identity_shortcut_of_the_activated_input():
  block = _ZeroResidual(4, 1, "relu", 1.0)
  x = _input(4)
  np.testing.assert_array_equal(block(x).numpy(), tf.nn.relu(x).numpy())
  assert block.shortcut is None and not block.weights


def test_same_channels_strided_shortcut_subsamples():
  block = _ZeroResidual(4, 2, "relu", 1.0)
  x = _input(4)
  np.testing.assert_array_equal(block(x).numpy(), tf.nn.relu(x)[:, ::2, ::2, :].numpy())


def test_channel_change_builds_a_projection_shortcut():
  block = _ZeroResidual(6, 2, "gelu", 1.0)
  out = block(_input(4), training=False)
  assert out.shape == (2, 4, 4, 6)
  assert block.shortcut is not None
  assert block.shortcut.conv.kernel.shape == (1, 1, 4, 6)


def test_get_config_holds_the_shared_arguments():
  config = _ZeroResidual(4, 2, "gelu", 0.8, name="b").get_config()
  assert (config["strides"], config["activation"], config["drop_path_keep_prob"]) == (2, "gelu", 0.8)
