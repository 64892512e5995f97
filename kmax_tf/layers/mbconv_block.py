"""MBConv (inverted residual) block as used by MOAT.

MobileNetV2's inverted bottleneck (Sandler et al., CVPR 2018) in the
pre-normalized form of MOAT (Yang et al., ICLR 2023), following DeepLab2:

  shortcut = conv1x1(avg_pool(x))            # pool if strided, conv if widths differ
  y = BN(x) -> conv1x1 (expand, no bias) -> BN -> GELU
        -> depthwise 3x3 (stride, no bias) -> BN -> GELU
        [-> squeeze-and-excitation] -> conv1x1 (shrink, with bias)
  out = shortcut + drop_path(y)

The shortcut pool is a 'same'-padded average pool whose size is
`pool_size` (DeepLab2's kMaX encoder uses 3, its ImageNet classifier 2);
'same' average pooling averages over the valid pixels only.
"""
from typing import Optional

import tensorflow as tf
import tf_keras

from kmax_tf.layers import activations
from kmax_tf.layers import drop_path
from kmax_tf.layers import normalization
from kmax_tf.layers import squeeze_and_excitation

# DeepLab2's MOAT ignores the config's BN constants.
_MOAT_BN = normalization.KERAS_DEFAULT_CONSTANTS


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class MBConvBlock(tf_keras.layers.Layer):
  """Pre-norm MBConv block with output width `hidden_size`.

  Sub-layers (the checkpoint importer relies on these attribute names):
  `shortcut_pool` (None at stride 1), `shortcut_conv` (None if the input width
  equals hidden_size; created in build), `pre_norm`, `expand_conv`,
  `expand_norm`, `depthwise_conv`, `depthwise_norm`, `se` (None without SE),
  `shrink_conv`, `drop_path`.

  Args:
    hidden_size: output channels.
    stride: spatial stride of the depthwise convolution and shortcut pool.
    expansion_rate: the expanded (depthwise) width is
      hidden_size * expansion_rate channels.
    se_ratio: squeeze-and-excitation width as a fraction of hidden_size; None
      builds no SE gate.
    kernel_size: depthwise kernel size in pixels.
    pool_size: window of the shortcut average pool (strided blocks only).
    drop_path_keep_prob: as in BottleneckBlock (1.0 disables drop path).
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               hidden_size: int,
               stride: int = 1,
               expansion_rate: int = 4,
               se_ratio: Optional[float] = 0.25,
               kernel_size: int = 3,
               pool_size: int = 3,
               drop_path_keep_prob: float = 1.0,
               **kwargs):
    super().__init__(**kwargs)
    self.hidden_size = int(hidden_size)
    self.stride = int(stride)
    self.expansion_rate = int(expansion_rate)
    self.se_ratio = None if se_ratio is None else float(se_ratio)
    self.kernel_size = int(kernel_size)
    self.pool_size = int(pool_size)
    self.drop_path_keep_prob = float(drop_path_keep_prob)
    inner = self.hidden_size * self.expansion_rate
    init = squeeze_and_excitation.moat_kernel_initializer

    self.shortcut_pool = None
    if self.stride > 1:
      self.shortcut_pool = tf_keras.layers.AveragePooling2D(
          self.pool_size, strides=self.stride, padding="same", name="shortcut_pool")
    self.shortcut_conv = None
    self.pre_norm = normalization.batch_norm("pre_norm", **_MOAT_BN)
    self.expand_conv = tf_keras.layers.Conv2D(
        inner, 1, padding="same", use_bias=False, kernel_initializer=init(),
        name="expand_conv")
    self.expand_norm = normalization.batch_norm("expand_norm", **_MOAT_BN)
    self.depthwise_conv = tf_keras.layers.DepthwiseConv2D(
        self.kernel_size, strides=self.stride, padding="same", use_bias=False,
        depthwise_initializer=init(), name="depthwise_conv")
    self.depthwise_norm = normalization.batch_norm("depthwise_norm", **_MOAT_BN)
    self.se = None
    if self.se_ratio is not None:
      self.se = squeeze_and_excitation.SqueezeAndExcitation(
          max(1, int(self.hidden_size * self.se_ratio)), inner, name="se")
    self.shrink_conv = tf_keras.layers.Conv2D(
        self.hidden_size, 1, padding="same", use_bias=True, kernel_initializer=init(),
        bias_initializer="zeros", name="shrink_conv")
    self.drop_path = drop_path.DropPath(self.drop_path_keep_prob, name="drop_path")
    self._gelu = activations.get_activation("gelu")

  def build(self, input_shape):
    if input_shape[-1] != self.hidden_size:
      self.shortcut_conv = tf_keras.layers.Conv2D(
          self.hidden_size, 1, padding="same", use_bias=True,
          kernel_initializer=squeeze_and_excitation.moat_kernel_initializer(),
          bias_initializer="zeros", name="shortcut_conv")
    super().build(input_shape)

  def call(self, inputs, training=None):
    shortcut = inputs
    if self.shortcut_pool is not None:
      # Keras pools return float32 under mixed precision; keep the compute dtype.
      shortcut = tf.cast(self.shortcut_pool(shortcut), inputs.dtype)
    if self.shortcut_conv is not None:
      shortcut = self.shortcut_conv(shortcut)
    x = self.pre_norm(inputs, training=training)
    x = self._gelu(self.expand_norm(self.expand_conv(x), training=training))
    x = self._gelu(self.depthwise_norm(self.depthwise_conv(x), training=training))
    if self.se is not None:
      x = self.se(x)
    x = self.shrink_conv(x)
    return shortcut + self.drop_path(x, training=training)

  def get_config(self):
    config = super().get_config()
    config.update(hidden_size=self.hidden_size, stride=self.stride,
                  expansion_rate=self.expansion_rate, se_ratio=self.se_ratio,
                  kernel_size=self.kernel_size, pool_size=self.pool_size,
                  drop_path_keep_prob=self.drop_path_keep_prob)
    return config
