"""Atrous Spatial Pyramid Pooling (ASPP).

ASPP of DeepLabv3 (Chen et al., "Rethinking Atrous Convolution for Semantic
Image Segmentation", 2017) with ParseNet image pooling (Liu et al., 2015), as
used by Panoptic-DeepLab (Cheng et al., CVPR 2020) and by the auxiliary
semantic decoder of kMaX-DeepLab: a 1x1 conv, three dilated 3x3 convs and an
image-pooling branch, each
conv + BN + activation, concatenated and projected by a 1x1 conv + BN +
activation, then dropout.

Image pooling is global average pooling (kMaX-DeepLab never changes it, in
training or inference). `set_pool_size` switches to DeepLab2's tiled pooling
(a stride-1 average pool of the given window, resized back with aligned
corners), which Panoptic-DeepLab uses to pool over the training crop size at
inference; `reset_pooling_layer` restores global pooling.

Sub-layers (checkpoint importer relies on them): `conv_bn_act`, `aspp_convs`
(three ConvBNAct), `pool_conv_bn_act`, `proj_conv_bn_act`, `proj_dropout`.
With `use_only_1x1_proj_conv=True` only `proj_conv_bn_act` exists.
"""
from typing import Optional, Sequence

import tensorflow as tf
import tf_keras

from kmax_tf.layers import align_corners_resize
from kmax_tf.layers import conv_bn_act


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class ASPP(tf_keras.layers.Layer):
  """ASPP: [1x1, 3x3 r1, 3x3 r2, 3x3 r3, image pool] -> 1x1 projection -> dropout.

  Maps [B, H, W, C] to [B, H, W, output_channels].

  Args:
    output_channels: channels of every branch and of the projection.
    atrous_rates: dilation rates of the three 3x3 branches.
    use_only_1x1_proj_conv: build only the 1x1 projection (no branches, no
      pooling, no dropout).
    activation: activation name (see kmax_tf.layers.activations).
    dropout_rate: dropout rate (0..1) after the projection, in training.
    pool_size: (height, width) window in pixels of the image pooling at the
      ASPP input's resolution; None or (None, None) pools globally.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               output_channels: int,
               atrous_rates: Sequence[int] = (6, 12, 18),
               use_only_1x1_proj_conv: bool = False,
               activation: str = "relu",
               dropout_rate: float = 0.1,
               pool_size: Optional[Sequence[Optional[int]]] = None,
               **kwargs):
    super().__init__(**kwargs)
    atrous_rates = tuple(int(r) for r in atrous_rates)
    if not use_only_1x1_proj_conv and len(atrous_rates) != 3:
      raise ValueError(f"{self.name}: ASPP needs exactly 3 atrous rates, got {atrous_rates}.")
    self.output_channels = output_channels
    self.atrous_rates = atrous_rates
    self.use_only_1x1_proj_conv = use_only_1x1_proj_conv
    self.activation = activation
    self.dropout_rate = dropout_rate
    self.pool_size = None
    self.set_pool_size(pool_size)

    self.proj_conv_bn_act = conv_bn_act.ConvBNAct(
        output_channels, 1, activation=activation, name="proj_conv_bn_act")
    if use_only_1x1_proj_conv:
      return
    self.conv_bn_act = conv_bn_act.ConvBNAct(
        output_channels, 1, activation=activation, name="conv_bn_act")
    self.aspp_convs = [
        conv_bn_act.ConvBNAct(output_channels, 3, dilation_rate=rate,
                              activation=activation, name=f"aspp_conv{i + 1}")
        for i, rate in enumerate(atrous_rates)
    ]
    self.pool_conv_bn_act = conv_bn_act.ConvBNAct(
        output_channels, 1, activation=activation, name="aspp_pool")
    self.proj_dropout = tf_keras.layers.Dropout(dropout_rate, name="proj_dropout")

  def set_pool_size(self, pool_size: Optional[Sequence[Optional[int]]]):
    """Sets the image-pooling window; None or (None, None) = global pooling.

    Args:
      pool_size: (height, width) of the average-pool window in pixels of the
        ASPP input, or None / (None, None).
    """
    if pool_size is None or tuple(pool_size) == (None, None):
      self.pool_size = None
      return
    if None in tuple(pool_size) or len(pool_size) != 2:
      raise ValueError(f"{self.name}: pool_size must set both dimensions or neither, "
                       f"got {pool_size}.")
    self.pool_size = (int(pool_size[0]), int(pool_size[1]))

  def get_pool_size(self):
    return (None, None) if self.pool_size is None else self.pool_size

  def reset_pooling_layer(self):
    self.pool_size = None

  def _image_pooling(self, x, training):
    static_hw = x.shape[1:3]
    if self.pool_size is not None:
      window = self.pool_size
    elif None not in static_hw:
      window = list(static_hw)
    else:
      window = None
    if window is None:
      # Unknown spatial size (a dynamic-shape export): the mean is the same
      # global average, up to float32 summation order.
      pooled = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    else:
      # AvgPool over the full window, as DeepLab2, for bit-identical sums.
      pooled = tf.nn.avg_pool2d(x, ksize=window, strides=1, padding="VALID")
    pooled = self.pool_conv_bn_act(pooled, training=training)
    size = tf.shape(x)[1:3]
    # The resize returns float32 for any input; keep the mixed-precision dtype.
    return tf.cast(align_corners_resize.bilinear(pooled, size), x.dtype)

  def call(self, inputs, training=None):
    if self.use_only_1x1_proj_conv:
      return self.proj_conv_bn_act(inputs, training=training)
    branches = [self.conv_bn_act(inputs, training=training)]
    branches += [conv(inputs, training=training) for conv in self.aspp_convs]
    branches.append(self._image_pooling(inputs, training))
    x = self.proj_conv_bn_act(tf.concat(branches, axis=-1), training=training)
    return self.proj_dropout(x, training=training)

  def get_config(self):
    config = super().get_config()
    config.update(
        output_channels=self.output_channels, atrous_rates=list(self.atrous_rates),
        use_only_1x1_proj_conv=self.use_only_1x1_proj_conv, activation=self.activation,
        dropout_rate=self.dropout_rate,
        pool_size=None if self.pool_size is None else list(self.pool_size))
    return config
