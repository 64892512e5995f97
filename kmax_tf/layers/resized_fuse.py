"""Fuses features of different resolutions and widths by resizing and summing.

The skip-connection fuser of MaX-DeepLab's stacked decoder (Wang et al.,
"MaX-DeepLab: End-to-End Panoptic Segmentation with Mask Transformers",
CVPR 2021), reused by the kMaX-DeepLab pixel decoder. Each input is brought to (height, width,
num_channels), then all are summed:

* an input that already has `num_channels` is only resized (no 1x1 conv: its
  producer and consumer are usually 1x1 convolutions already, and a feature
  reused by several fusers would otherwise pay for many projections);
* an input whose size halves (rounding up) to the target is projected with a
  stride-2 1x1 conv + BN, which is cheaper than conv + resize;
* any other input is projected with a 1x1 conv + BN and bilinearly resized
  with aligned corners.

Projected inputs go through activation -> conv -> BN, so the sum is formed
before the next activation, as in a ResNet bottleneck. DeepLab2 decides the
branch of each input from its static shape when the layer is built; we do the
same, and the checkpoint mapping reads the choice from `projection_kinds`.
"""
from typing import List, Optional

import tensorflow as tf
import tf_keras

from kmax_tf.layers import activations
from kmax_tf.layers import align_corners_resize
from kmax_tf.layers import conv_bn_act

IDENTITY = "identity"
STRIDED = "strided"
RESIZED = "resized"


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class ResizedFuse(tf_keras.layers.Layer):
  """Resizes/projects a list of [B, H_i, W_i, C_i] features and sums them.

  The output is [B, height, width, num_channels]; inputs need static shapes.

  Args:
    height: output height in pixels.
    width: output width in pixels.
    num_channels: output channels.
    activation: activation name (see kmax_tf.layers.activations) applied to
      projected inputs before their 1x1 conv.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               height: int,
               width: int,
               num_channels: int,
               activation: str = "relu",
               **kwargs):
    super().__init__(**kwargs)
    self.height = height
    self.width = width
    self.num_channels = num_channels
    self.activation = activation
    self._activation_fn = activations.get_activation(activation)
    # Filled by build(), one entry per input.
    self.projection_kinds: List[str] = []
    self.projections: List[Optional[conv_bn_act.ConvBNAct]] = []

  def _kind(self, shape):
    _, height, width, channels = shape
    if channels == self.num_channels:
      return IDENTITY
    if (height + 1) // 2 == self.height and (width + 1) // 2 == self.width:
      return STRIDED
    return RESIZED

  def build(self, input_shapes):
    kinds, projections = [], []
    for index, shape in enumerate(input_shapes):
      shape = tf.TensorShape(shape).as_list()
      kind = self._kind(shape)
      projection = None
      if kind != IDENTITY:
        projection = conv_bn_act.ConvBNAct(
            self.num_channels, kernel_size=1, strides=2 if kind == STRIDED else 1,
            use_bias=False, use_bn=True, activation=None,
            name=f"{kind}_conv_bn{index + 1}")
        projection.build(shape)
      kinds.append(kind)
      projections.append(projection)
    self.projection_kinds = kinds
    self.projections = projections
    super().build(input_shapes)

  def call(self, inputs, training=None):
    fused = []
    for kind, projection, feature in zip(self.projection_kinds, self.projections, inputs):
      if kind != IDENTITY:
        if self._activation_fn is not None:
          feature = self._activation_fn(feature)
        feature = projection(feature, training=training)
      if kind != STRIDED:
        feature = align_corners_resize.resize_features(
            feature, (self.height, self.width))
      fused.append(feature)
    return tf.add_n(fused)

  def compute_output_shape(self, input_shapes):
    batch = tf.TensorShape(input_shapes[0])[0]
    return tf.TensorShape([batch, self.height, self.width, self.num_channels])

  def get_config(self):
    config = super().get_config()
    config.update(height=self.height, width=self.width,
                  num_channels=self.num_channels, activation=self.activation)
    return config
