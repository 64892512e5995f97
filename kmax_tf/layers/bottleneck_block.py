"""ResNet bottleneck block (He et al., "Deep Residual Learning for Image
Recognition", CVPR 2016) in DeepLab2's form, as used by the ResNet-50 pixel
encoder and the high-resolution pixel-decoder stages of kMaX-DeepLab.

DeepLab2 conventions kept for checkpoint parity:
- the block takes the *pre-activation* output of the previous block and
  applies the activation itself; it returns conv3_bn(...) + shortcut without
  a final activation (the next block or the encoder endpoint applies it);
- the stride sits in the 3x3 convolution, which pads symmetrically when
  strided (no max-pool anywhere in the network);
- the last BN starts with gamma = 0 (Goyal et al., 2017) so every block
  starts as the identity;
- the projection shortcut (1x1 conv + BN, strided) exists only when the
  channel count changes; otherwise a strided block subsamples the input.
"""
import tf_keras

from kmax_tf.layers import conv_bn_act
from kmax_tf.layers import residual_bottleneck


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class BottleneckBlock(residual_bottleneck.ResidualBottleneck):
  """1x1 (filters) -> 3x3 (filters, strided, dilated) -> 1x1 (4 * filters).

  Sub-layers (the checkpoint importer relies on these attributes):
  `conv1_bn_act`, `conv2_bn_act`, `conv3_bn` (ConvBNAct), and the base class's
  `shortcut` and `drop_path`.

  Args:
    filters: channels of the 1x1 and 3x3 convolutions; the block outputs
      4 * filters.
    strides: spatial stride of the 3x3 convolution.
    dilation_rate: atrous rate of the 3x3 convolution.
    activation: activation name (see kmax_tf.layers.activations).
    drop_path_keep_prob: probability (0, 1] of keeping the residual branch per
      example in training; 1.0 disables drop path.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               filters: int,
               strides: int = 1,
               dilation_rate: int = 1,
               activation: str = "relu",
               drop_path_keep_prob: float = 1.0,
               **kwargs):
    super().__init__(4 * filters, strides, activation, drop_path_keep_prob, **kwargs)
    self.filters = filters
    self.dilation_rate = dilation_rate

    self.conv1_bn_act = conv_bn_act.ConvBNAct(
        filters, 1, activation=activation, name="conv1_bn_act")
    self.conv2_bn_act = conv_bn_act.ConvBNAct(
        filters, 3, strides=strides, dilation_rate=dilation_rate,
        activation=activation, name="conv2_bn_act")
    self.conv3_bn = conv_bn_act.ConvBNAct(
        self.output_channels, 1, bn_gamma_initializer="zeros", name="conv3_bn")

  def _residual(self, x, training):
    x = self.conv1_bn_act(x, training=training)
    x = self.conv2_bn_act(x, training=training)
    return self.conv3_bn(x, training=training)

  def get_config(self):
    config = super().get_config()
    config.update(filters=self.filters, dilation_rate=self.dilation_rate)
    return config
