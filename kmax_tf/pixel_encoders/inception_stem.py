"""Inception-style stem of DeepLab2's 'resnet_beta' backbone type.

Three 3x3 convolutions (stride 2, 1, 1) instead of one 7x7, following the
Inception-v4 stem (Szegedy et al., AAAI 2017) as adopted by DeepLab's
ResNet-beta and by MaX-DeepLab-S (Wang et al., CVPR 2021), whose backbone is the
axial-ResNet-50 pixel encoder of kMaX-DeepLab. The last
convolution has no activation: the stem output is the pre-activation `stage1`
endpoint at stride 2.
"""
import tf_keras

from kmax_tf.layers import conv_bn_act


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class InceptionStem(tf_keras.layers.Layer):
  """[B, H, W, 3] -> [B, ceil(H/2), ceil(W/2), 2 * filters].

  Sub-layers: `conv1_bn_act` (3x3/2, filters), `conv2_bn_act` (3x3, filters),
  `conv3_bn` (3x3, 2 * filters, no activation).

  Args:
    filters: channels of the first two convolutions; the output has
      2 * filters.
    activation: activation name (see kmax_tf.layers.activations) after the
      first two convolutions.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self, filters: int = 64, activation: str = "gelu", **kwargs):
    super().__init__(**kwargs)
    self.filters = filters
    self.activation = activation
    self.conv1_bn_act = conv_bn_act.ConvBNAct(
        filters, 3, strides=2, activation=activation, name="conv1_bn_act")
    self.conv2_bn_act = conv_bn_act.ConvBNAct(
        filters, 3, activation=activation, name="conv2_bn_act")
    self.conv3_bn = conv_bn_act.ConvBNAct(2 * filters, 3, name="conv3_bn")

  def call(self, inputs, training=None):
    x = self.conv1_bn_act(inputs, training=training)
    x = self.conv2_bn_act(x, training=training)
    return self.conv3_bn(x, training=training)

  def get_config(self):
    config = super().get_config()
    config.update(filters=self.filters, activation=self.activation)
    return config
