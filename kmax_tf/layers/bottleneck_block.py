"""ResNet bottleneck block (He et al., "Deep Residual Learning for Image
Recognition", CVPR 2016) in DeepLab2's form, as used by the ResNet-50 pixel
encoder and the high-resolution pixel-decoder stages of kMaX-DeepLab (Yu et
al., "k-means Mask Transformer", ECCV 2022).

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

from kmax_tf.layers import activations
from kmax_tf.layers import conv_bn_act
from kmax_tf.layers import drop_path


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class BottleneckBlock(tf_keras.layers.Layer):
  """1x1 (filters) -> 3x3 (filters, strided, dilated) -> 1x1 (4 * filters).

  Sub-layers (the checkpoint importer relies on these attributes):
  `conv1_bn_act`, `conv2_bn_act`, `conv3_bn` (ConvBNAct), `shortcut`
  (ConvBNAct, or None after build when the channel count is unchanged), `drop_path`.
  """

  def __init__(self,
               filters: int,
               strides: int = 1,
               dilation_rate: int = 1,
               activation: str = "relu",
               drop_path_keep_prob: float = 1.0,
               **kwargs):
    super().__init__(**kwargs)
    self.filters = filters
    self.strides = strides
    self.dilation_rate = dilation_rate
    self.activation = activation
    self.drop_path_keep_prob = float(drop_path_keep_prob)
    self.output_channels = 4 * filters
    self._activation_fn = activations.get_activation(activation)

    self.conv1_bn_act = conv_bn_act.ConvBNAct(
        filters, 1, activation=activation, name="conv1_bn_act")
    self.conv2_bn_act = conv_bn_act.ConvBNAct(
        filters, 3, strides=strides, dilation_rate=dilation_rate,
        activation=activation, name="conv2_bn_act")
    self.conv3_bn = conv_bn_act.ConvBNAct(
        self.output_channels, 1, bn_gamma_initializer="zeros", name="conv3_bn")
    self.drop_path = drop_path.DropPath(self.drop_path_keep_prob, name="drop_path")
    # Created here rather than in build() so that its BN honours the
    # batch-norm mode (synchronized or not) active at construction time.
    self.shortcut = conv_bn_act.ConvBNAct(
        self.output_channels, 1, strides=self.strides, name="shortcut")

  def build(self, input_shape):
    if input_shape[-1] == self.output_channels:
      self.shortcut = None  # never called, so it owns no variables
    super().build(input_shape)

  def call(self, inputs, training=None):
    x = self._activation_fn(inputs)
    if self.shortcut is not None:
      shortcut = self.shortcut(x, training=training)
    elif self.strides != 1:
      shortcut = x[:, ::self.strides, ::self.strides, :]
    else:
      shortcut = x
    x = self.conv1_bn_act(x, training=training)
    x = self.conv2_bn_act(x, training=training)
    x = self.conv3_bn(x, training=training)
    return self.drop_path(x, training=training) + shortcut

  def get_config(self):
    config = super().get_config()
    config.update(
        filters=self.filters, strides=self.strides, dilation_rate=self.dilation_rate,
        activation=self.activation, drop_path_keep_prob=self.drop_path_keep_prob)
    return config
