"""Squeeze-and-excitation gate of the MBConv blocks in MOAT.

As DeepLab2's MOAT (Yang et al., ICLR 2023) builds it: global average over
H and W, 1x1 conv to `se_filters` (with bias), swish, 1x1 conv back to the
input width (with bias), sigmoid, multiplied with the input.
"""
import tensorflow as tf
import tf_keras

_KERNEL_STDDEV = 0.02  # DeepLab2's MOAT initializer (random normal, stddev 0.02).


def moat_kernel_initializer():
  return tf_keras.initializers.RandomNormal(stddev=_KERNEL_STDDEV)


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class SqueezeAndExcitation(tf_keras.layers.Layer):
  """Channel gate on [B, H, W, C]. Sub-layers: `reduce_conv`, `expand_conv`.

  Args:
    se_filters: channels of the squeezed (reduced) representation.
    output_filters: channels of the gate; must equal the input's C.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self, se_filters: int, output_filters: int, **kwargs):
    super().__init__(**kwargs)
    self.se_filters = int(se_filters)
    self.output_filters = int(output_filters)

    def conv(filters, name):
      return tf_keras.layers.Conv2D(filters, 1, padding="same", use_bias=True,
                                    kernel_initializer=moat_kernel_initializer(),
                                    bias_initializer="zeros", name=name)

    self.reduce_conv = conv(self.se_filters, "reduce_conv2d")
    self.expand_conv = conv(self.output_filters, "expand_conv2d")

  def call(self, inputs):
    x = tf.reduce_mean(inputs, [1, 2], keepdims=True)
    x = self.expand_conv(tf.nn.silu(self.reduce_conv(x)))
    return tf.sigmoid(x) * inputs

  def get_config(self):
    config = super().get_config()
    config.update(se_filters=self.se_filters, output_filters=self.output_filters)
    return config
