"""A Panoptic-DeepLab style prediction head: one 5x5 conv block + a 1x1 conv.

Panoptic-DeepLab (Cheng et al., CVPR 2020) predicts each output with a 5x5
convolution block followed by a 1x1 convolution; MaX-DeepLab (Wang et al.,
CVPR 2021) and kMaX-DeepLab
reuse it for the pixel-embedding head and the auxiliary semantic head.

`conv_type='depthwise_separable_conv'` makes the conv block a 5x5 depthwise
conv + BN + activation followed by a 1x1 conv + BN + activation (both
activated, as in DeepLab2's separable convolution); `'standard_conv'` makes it
one 5x5 conv + BN + activation. The final 1x1 conv has a bias and no BN.

Sub-layers: `conv_block` (list of ConvBNAct: [depthwise, pointwise] or [conv])
and `final_conv`. The call returns the output tensor (not a dict), so callers
choose their own endpoint name.
"""
import tf_keras

from kmax_tf.layers import conv_bn_act

CONV_TYPES = ("depthwise_separable_conv", "standard_conv")
KERNEL_SIZE = 5


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class PanopticSingleHead(tf_keras.layers.Layer):
  """5x5 conv block (BN + activation) followed by a biased 1x1 conv.

  Args:
    head_channels: output channels of the 5x5 conv block.
    output_channels: channels of the final 1x1 conv (the output).
    conv_type: 'depthwise_separable_conv' or 'standard_conv'.
    activation: activation name (see kmax_tf.layers.activations).
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               head_channels: int,
               output_channels: int,
               conv_type: str = "depthwise_separable_conv",
               activation: str = "relu",
               **kwargs):
    super().__init__(**kwargs)
    if conv_type not in CONV_TYPES:
      raise ValueError(f"{self.name}: conv_type must be one of {CONV_TYPES}, got {conv_type!r}.")
    self.head_channels = head_channels
    self.output_channels = output_channels
    self.conv_type = conv_type
    self.activation = activation

    if conv_type == "depthwise_separable_conv":
      self.conv_block = [
          conv_bn_act.ConvBNAct(None, KERNEL_SIZE, depthwise=True,
                                activation=activation, name="depthwise"),
          conv_bn_act.ConvBNAct(head_channels, 1, activation=activation,
                                name="pointwise"),
      ]
    else:
      self.conv_block = [
          conv_bn_act.ConvBNAct(head_channels, KERNEL_SIZE, activation=activation,
                                name="conv"),
      ]
    # Small init (ImageNet classifier style) keeps the initial logits near zero.
    self.final_conv = tf_keras.layers.Conv2D(
        output_channels, 1, use_bias=True,
        kernel_initializer=tf_keras.initializers.TruncatedNormal(stddev=0.01),
        name="final_conv")

  def call(self, inputs, training=None):
    x = inputs
    for layer in self.conv_block:
      x = layer(x, training=training)
    return self.final_conv(x)

  def get_config(self):
    config = super().get_config()
    config.update(head_channels=self.head_channels, output_channels=self.output_channels,
                  conv_type=self.conv_type, activation=self.activation)
    return config
