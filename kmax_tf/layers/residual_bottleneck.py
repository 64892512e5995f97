"""Shared wiring of DeepLab2's pre-activation residual bottleneck blocks.

Both the ResNet bottleneck block (He et al., CVPR 2016) and the axial block of
Axial-DeepLab (Wang et al., ECCV 2020) that kMaX-DeepLab uses are, in DeepLab2's form,

  out = drop_path(residual(act(x))) + shortcut(act(x))

with the input and the output pre-activation features (the next block or the
encoder endpoint applies the activation), a 1x1 conv+BN projection shortcut
only when the channel count changes, and a strided slice as the shortcut of a
strided block that keeps its channel count. Subclasses build the residual
branch and implement `_residual`.
"""
import tf_keras

from kmax_tf.layers import activations
from kmax_tf.layers import conv_bn_act
from kmax_tf.layers import drop_path


class ResidualBottleneck(tf_keras.layers.Layer):
  """Base class: activation, shortcut and drop-path around `_residual`.

  Sub-layers: `shortcut` (ConvBNAct, or None after build when the channel count
  is unchanged) and `drop_path`.

  Args:
    output_channels: channels of the block output (and of the shortcut).
    strides: spatial stride of the block.
    activation: activation name (see kmax_tf.layers.activations) applied to
      the pre-activation input.
    drop_path_keep_prob: probability (0, 1] of keeping the residual branch per
      example in training; 1.0 disables drop path.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self, output_channels: int, strides: int, activation: str,
               drop_path_keep_prob: float, **kwargs):
    super().__init__(**kwargs)
    self.output_channels = output_channels
    self.strides = strides
    self.activation = activation
    self.drop_path_keep_prob = float(drop_path_keep_prob)
    self._activation_fn = activations.get_activation(activation)
    self.drop_path = drop_path.DropPath(self.drop_path_keep_prob, name="drop_path")
    # Created here rather than in build() so that its BN honours the
    # batch-norm mode (synchronized or not) active at construction time.
    self.shortcut = conv_bn_act.ConvBNAct(
        output_channels, 1, strides=strides, name="shortcut")

  def build(self, input_shape):
    if input_shape[-1] == self.output_channels:
      self.shortcut = None  # never called, so it owns no variables
    super().build(input_shape)

  def _residual(self, x, training):
    raise NotImplementedError

  def call(self, inputs, training=None):
    x = self._activation_fn(inputs)
    if self.shortcut is not None:
      shortcut = self.shortcut(x, training=training)
    elif self.strides != 1:
      shortcut = x[:, ::self.strides, ::self.strides, :]
    else:
      shortcut = x
    return self.drop_path(self._residual(x, training), training=training) + shortcut

  def get_config(self):
    config = super().get_config()
    config.update(strides=self.strides, activation=self.activation,
                  drop_path_keep_prob=self.drop_path_keep_prob)
    return config
