"""The stem of DeepLab2's 'resnet' backbone type (ResNet-50 of kMaX-DeepLab).

He et al. ("Deep Residual Learning for Image Recognition", CVPR 2016) start
with a 7x7/2 convolution and a 3x3/2 max-pool. DeepLab2, whose ResNet-50
kMaX-DeepLab checkpoints we
load, keeps only the convolution + BN: there is no max-pool (the first
bottleneck of stage 2 is strided instead) and no activation here (the
encoder applies it to produce `res1` and the first block applies it again to
its input), so the stem output is the pre-activation `stage1` endpoint at
stride 2.
"""
import tf_keras

from kmax_tf.layers import conv_bn_act


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class ResNetStem(tf_keras.layers.Layer):
  """7x7 stride-2 convolution + BN, [B, H, W, 3] -> [B, ceil(H/2), ceil(W/2), filters].

  Sub-layer `conv_bn` (ConvBNAct), symmetric padding of 3 like DeepLab2's
  Conv2DSame.

  Args:
    filters: output channels.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self, filters: int = 64, **kwargs):
    super().__init__(**kwargs)
    self.filters = filters
    self.conv_bn = conv_bn_act.ConvBNAct(filters, 7, strides=2, name="conv_bn")

  def call(self, inputs, training=None):
    return self.conv_bn(inputs, training=training)

  def get_config(self):
    config = super().get_config()
    config.update(filters=self.filters)
    return config
