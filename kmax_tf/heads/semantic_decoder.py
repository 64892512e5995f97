"""Auxiliary semantic decoder of kMaX-DeepLab: ASPP + low-level feature fusion.

kMaX-DeepLab, like
MaX-DeepLab (Wang et al., CVPR 2021), adds an auxiliary semantic segmentation
loss. When the semantic feature (the stride-32 backbone output) is coarser
than the panoptic feature, a Panoptic-DeepLab (Cheng et al., CVPR 2020)
single-task decoder brings it to the panoptic resolution: ASPP on the coarse
feature, then for each low-level feature (highest level first, e.g. res3 then
res2) a 1x1 projection + BN + activation, bilinear upsampling (aligned
corners) of the running feature to its size, concatenation [running,
projected], and a 5x5 fusion conv block + BN + activation.

Only the auxiliary semantic loss reads its output, so the whole branch can be
skipped at inference (DeepLab2 still runs it).

Reads the endpoint dict: `high_level_feature_key` (kMaX: 'feature_semantic',
which DeepLab2's kMaX transformer decoder sets to the encoder's 'stage5') and
`low_level_feature_keys` (kMaX COCO: 'res3', 'res2'). Returns one tensor at
the resolution of the last low-level feature, `decoder_channels` channels.

Sub-layers (checkpoint importer relies on them): `aspp`, `low_level_convs`
(ConvBNAct per low-level feature) and `fusion_convs` (per low-level feature a
list: [depthwise 5x5, pointwise 1x1] ConvBNAct, or [5x5 ConvBNAct] for
'standard_conv').
"""
from typing import Dict, Optional, Sequence

import tensorflow as tf
import tf_keras

from kmax_tf.heads import aspp as aspp_lib
from kmax_tf.layers import align_corners_resize
from kmax_tf.layers import conv_bn_act

CONV_TYPES = ("depthwise_separable_conv", "standard_conv")
FUSION_KERNEL_SIZE = 5


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class SemanticDecoder(tf_keras.layers.Layer):
  """Panoptic-DeepLab single decoder: ASPP, then fuse low-level features.

  Args:
    high_level_feature_key: endpoint of the coarse feature the ASPP reads.
    low_level_feature_keys: endpoints fused in turn, highest level first.
    low_level_channels_project: channels of each low-level 1x1 projection,
      one per low-level key.
    aspp_channels: channels of the ASPP branches and output.
    atrous_rates: dilation rates of the ASPP's three 3x3 branches.
    decoder_channels: channels of each fusion block and of the output.
    aspp_use_only_1x1_proj_conv: see ASPP.use_only_1x1_proj_conv.
    decoder_conv_type: 'depthwise_separable_conv' or 'standard_conv' for the
      5x5 fusion blocks.
    activation: activation name (see kmax_tf.layers.activations).
    aspp_dropout_rate: dropout rate (0..1) after the ASPP projection.
    aspp_pool_size: see ASPP.pool_size.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               high_level_feature_key: str = "feature_semantic",
               low_level_feature_keys: Sequence[str] = ("res3", "res2"),
               low_level_channels_project: Sequence[int] = (64, 32),
               aspp_channels: int = 256,
               atrous_rates: Sequence[int] = (6, 12, 18),
               decoder_channels: int = 256,
               aspp_use_only_1x1_proj_conv: bool = False,
               decoder_conv_type: str = "depthwise_separable_conv",
               activation: str = "gelu",
               aspp_dropout_rate: float = 0.1,
               aspp_pool_size: Optional[Sequence[Optional[int]]] = None,
               **kwargs):
    super().__init__(**kwargs)
    low_level_feature_keys = tuple(low_level_feature_keys)
    low_level_channels_project = tuple(int(c) for c in low_level_channels_project)
    if len(low_level_feature_keys) != len(low_level_channels_project):
      raise ValueError(
          f"{self.name}: {len(low_level_feature_keys)} low-level features but "
          f"{len(low_level_channels_project)} projection sizes.")
    if decoder_conv_type not in CONV_TYPES:
      raise ValueError(f"{self.name}: decoder_conv_type must be one of {CONV_TYPES}, "
                       f"got {decoder_conv_type!r}.")
    self.high_level_feature_key = high_level_feature_key
    self.low_level_feature_keys = low_level_feature_keys
    self.low_level_channels_project = low_level_channels_project
    self.aspp_channels = aspp_channels
    self.atrous_rates = tuple(int(r) for r in atrous_rates)
    self.decoder_channels = decoder_channels
    self.aspp_use_only_1x1_proj_conv = aspp_use_only_1x1_proj_conv
    self.decoder_conv_type = decoder_conv_type
    self.activation = activation
    self.aspp_dropout_rate = aspp_dropout_rate

    self.aspp = aspp_lib.ASPP(
        aspp_channels, self.atrous_rates, use_only_1x1_proj_conv=aspp_use_only_1x1_proj_conv,
        activation=activation, dropout_rate=aspp_dropout_rate, pool_size=aspp_pool_size,
        name="aspp")
    self.low_level_convs = []
    self.fusion_convs = []
    for i, channels in enumerate(low_level_channels_project):
      self.low_level_convs.append(conv_bn_act.ConvBNAct(
          channels, 1, activation=activation, name=f"low_level_conv{i + 1}"))
      if decoder_conv_type == "depthwise_separable_conv":
        fusion = [
            conv_bn_act.ConvBNAct(None, FUSION_KERNEL_SIZE, depthwise=True,
                                  activation=activation, name=f"fusion_conv{i + 1}_depthwise"),
            conv_bn_act.ConvBNAct(decoder_channels, 1, activation=activation,
                                  name=f"fusion_conv{i + 1}_pointwise"),
        ]
      else:
        fusion = [conv_bn_act.ConvBNAct(decoder_channels, FUSION_KERNEL_SIZE,
                                        activation=activation, name=f"fusion_conv{i + 1}")]
      self.fusion_convs.append(fusion)

  def set_pool_size(self, pool_size):
    """Sets the ASPP image-pooling window.

    Args:
      pool_size: (height, width) in pixels at the ASPP input's resolution, or
        None / (None, None) for global pooling.
    """
    self.aspp.set_pool_size(pool_size)

  def get_pool_size(self):
    return self.aspp.get_pool_size()

  def reset_pooling_layer(self):
    self.aspp.reset_pooling_layer()

  def call(self, features: Dict[str, tf.Tensor], training=None) -> tf.Tensor:
    x = self.aspp(features[self.high_level_feature_key], training=training)
    for key, project, fusion in zip(self.low_level_feature_keys, self.low_level_convs,
                                    self.fusion_convs):
      low_level = project(features[key], training=training)
      x = align_corners_resize.bilinear(x, tf.shape(low_level)[1:3])
      x = tf.cast(x, low_level.dtype)  # the resize returns float32 for any input
      x = tf.concat([x, low_level], axis=-1)
      for layer in fusion:
        x = layer(x, training=training)
    return x

  def get_config(self):
    config = super().get_config()
    config.update(
        high_level_feature_key=self.high_level_feature_key,
        low_level_feature_keys=list(self.low_level_feature_keys),
        low_level_channels_project=list(self.low_level_channels_project),
        aspp_channels=self.aspp_channels, atrous_rates=list(self.atrous_rates),
        decoder_channels=self.decoder_channels,
        aspp_use_only_1x1_proj_conv=self.aspp_use_only_1x1_proj_conv,
        decoder_conv_type=self.decoder_conv_type, activation=self.activation,
        aspp_dropout_rate=self.aspp_dropout_rate,
        aspp_pool_size=(None if self.aspp.pool_size is None else list(self.aspp.pool_size)))
    return config
