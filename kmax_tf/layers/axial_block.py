"""Axial block: a bottleneck block whose 3x3 convolution is 2-D axial attention.

Axial-DeepLab (Wang et al., ECCV 2020) and MaX-DeepLab (Wang et al., CVPR
2021) define the block; kMaX-DeepLab uses it beyond stride 16 in the axial-ResNet-50 backbone and at
strides 32/16 of the pixel decoder:

  act(x) -> 1x1 conv+BN+act (2 * filters) -> AxialAttention2D(filters) -> act
         -> 1x1 conv+BN (4 * filters, gamma = 0) -> + shortcut(act(x))

As in DeepLab2 (and BottleneckBlock), the input and the output are
pre-activation features, the stride is applied inside the attention, and the
projection shortcut exists only when the channel count changes.
"""
import tf_keras

from kmax_tf.layers import axial_attention_2d
from kmax_tf.layers import conv_bn_act
from kmax_tf.layers import residual_bottleneck


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class AxialBlock(residual_bottleneck.ResidualBottleneck):
  """Axial-attention residual block with 4 * filters output channels.

  Sub-layers (the checkpoint importer relies on these attributes):
  `conv1_bn_act`, `attention` (AxialAttention2D), `conv3_bn`, and the base
  class's `shortcut` and `drop_path`.

  Args:
    filters: base channels; the block outputs 4 * filters.
    strides: spatial stride of the attention.
    activation: activation name (see kmax_tf.layers.activations).
    drop_path_keep_prob: probability (0, 1] of keeping the residual branch per
      example in training; 1.0 disables drop path.
    bottleneck_expansion: the 1x1 reduction outputs
      bottleneck_expansion * filters channels.
    key_expansion: see AxialAttention2D.
    value_expansion: see AxialAttention2D.
    num_heads: attention heads per axis.
    query_shape: longest supported H and W of the attention input.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               filters: int,
               strides: int = 1,
               activation: str = "gelu",
               drop_path_keep_prob: float = 1.0,
               bottleneck_expansion: int = 2,
               key_expansion: float = 1.0,
               value_expansion: float = 2.0,
               num_heads: int = 8,
               query_shape: int = 129,
               **kwargs):
    super().__init__(4 * filters, strides, activation, drop_path_keep_prob, **kwargs)
    self.filters = filters
    self.bottleneck_expansion = bottleneck_expansion
    self.key_expansion = key_expansion
    self.value_expansion = value_expansion
    self.num_heads = num_heads
    self.query_shape = query_shape

    self.conv1_bn_act = conv_bn_act.ConvBNAct(
        bottleneck_expansion * filters, 1, activation=activation, name="conv1_bn_act")
    self.attention = axial_attention_2d.AxialAttention2D(
        filters=filters, strides=strides, key_expansion=key_expansion,
        value_expansion=value_expansion, num_heads=num_heads,
        query_shape=query_shape, name="attention")
    self.conv3_bn = conv_bn_act.ConvBNAct(
        self.output_channels, 1, bn_gamma_initializer="zeros", name="conv3_bn")

  def _residual(self, x, training):
    x = self.conv1_bn_act(x, training=training)
    x = self._activation_fn(self.attention(x, training=training))
    return self.conv3_bn(x, training=training)

  def get_config(self):
    config = super().get_config()
    config.update(
        filters=self.filters, bottleneck_expansion=self.bottleneck_expansion,
        key_expansion=self.key_expansion, value_expansion=self.value_expansion,
        num_heads=self.num_heads, query_shape=self.query_shape)
    return config
