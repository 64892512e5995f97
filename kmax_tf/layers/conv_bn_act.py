"""Convolution -> optional batch norm -> optional activation.

The building block of every kMaX-DeepLab component. Strided convolutions pad
explicitly and symmetrically
(DeepLab2's `Conv2DSame`), because Keras 'same' padding puts the extra row at the
bottom-right and would shift every feature map by one pixel against DeepLab2
checkpoints.

Sub-layer names are `conv` and `batch_norm`; the checkpoint importer relies on
the attributes `conv` and `batch_norm`.
"""
from typing import Optional

import tensorflow as tf
import tf_keras

from kmax_tf.layers import activations
from kmax_tf.layers import dilated_conv2d
from kmax_tf.layers import normalization


def _explicit_padding(kernel_size, dilation_rate):
  effective = kernel_size + (kernel_size - 1) * (dilation_rate - 1)
  total = effective - 1
  return total // 2, total - total // 2


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class ConvBNAct(tf_keras.layers.Layer):
  """2-D convolution (optionally depthwise) + BN + activation.

  Maps [B, H, W, C_in] to [B, ceil(H / strides), ceil(W / strides), filters]
  (C_in channels when depthwise).

  Args:
    filters: output channels; None for a depthwise convolution.
    kernel_size: square kernel size in pixels.
    strides: spatial stride; != 1 pads explicitly and symmetrically.
    dilation_rate: spatial dilation (atrous rate).
    depthwise: a depthwise convolution (channel multiplier 1) instead of a
      full one.
    use_bias: add a conv bias; exclusive with use_bn (the BN beta is the bias).
    use_bn: apply batch norm after the convolution.
    bn_gamma_initializer: initializer of the BN scale; 'zeros' makes a
      residual branch start as zero.
    activation: activation name (see kmax_tf.layers.activations) or None.
    kernel_initializer: Keras initializer (name or config) of the kernel.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               filters: Optional[int],
               kernel_size: int = 1,
               strides: int = 1,
               dilation_rate: int = 1,
               depthwise: bool = False,
               use_bias: bool = False,
               use_bn: bool = True,
               bn_gamma_initializer: str = "ones",
               activation: Optional[str] = None,
               kernel_initializer="he_normal",
               **kwargs):
    super().__init__(**kwargs)
    if use_bias and use_bn:
      raise ValueError(f"{self.name}: use_bias and use_bn are exclusive (the BN beta is the bias).")
    if depthwise and filters is not None:
      raise ValueError(f"{self.name}: a depthwise convolution takes filters=None.")
    self.filters = filters
    self.kernel_size = kernel_size
    self.strides = strides
    self.dilation_rate = dilation_rate
    self.depthwise = depthwise
    self.use_bias = use_bias
    self.use_bn = use_bn
    self.bn_gamma_initializer = bn_gamma_initializer
    self.activation = activation
    self.kernel_initializer = kernel_initializer

    self._pad = None
    padding = "same"
    if strides != 1:
      pad = _explicit_padding(kernel_size, dilation_rate)
      self._pad = [[0, 0], list(pad), list(pad), [0, 0]]
      padding = "valid"
    if depthwise:
      self.conv = tf_keras.layers.DepthwiseConv2D(
          kernel_size, strides=strides, padding=padding, use_bias=use_bias,
          dilation_rate=dilation_rate, depthwise_initializer=kernel_initializer,
          name="depthwise_conv")
    else:
      # Dilated stride-1 convs (ASPP) run as one native op; see DilatedConv2D.
      conv_class = (dilated_conv2d.DilatedConv2D if dilation_rate > 1 and strides == 1
                    else tf_keras.layers.Conv2D)
      self.conv = conv_class(
          filters, kernel_size, strides=strides, padding=padding,
          use_bias=use_bias, dilation_rate=dilation_rate,
          kernel_initializer=kernel_initializer, name="conv")
    self.batch_norm = (normalization.batch_norm(
        "batch_norm", gamma_initializer=bn_gamma_initializer) if use_bn else None)
    self._activation_fn = activations.get_activation(activation)

  def call(self, inputs, training=None):
    x = inputs
    if self._pad is not None:
      x = tf.pad(x, self._pad)
    x = self.conv(x)
    if self.batch_norm is not None:
      x = self.batch_norm(x, training=training)
    if self._activation_fn is not None:
      x = self._activation_fn(x)
    return x

  def get_config(self):
    config = super().get_config()
    config.update(
        filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
        dilation_rate=self.dilation_rate, depthwise=self.depthwise,
        use_bias=self.use_bias, use_bn=self.use_bn,
        bn_gamma_initializer=self.bn_gamma_initializer,
        activation=self.activation, kernel_initializer=self.kernel_initializer)
    return config


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class Conv1DBNAct(tf_keras.layers.Layer):
  """1x1 Conv1D + BN + activation over the cluster-center axis [B, N, C].

  DeepLab2 stores these kernels as [1, C_in, C_out] (Keras Conv1D), so we keep
  Conv1D rather than Dense to load checkpoints without reshapes.

  Args:
    filters: output channels (the output is [B, N, filters]).
    use_bias: add a conv bias; exclusive with use_bn.
    use_bn: apply batch norm after the convolution.
    bn_gamma_initializer: initializer of the BN scale; 'zeros' makes a
      residual branch start as zero.
    activation: activation name (see kmax_tf.layers.activations) or None.
    kernel_initializer: Keras initializer (name or config) of the kernel.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               filters: int,
               use_bias: bool = False,
               use_bn: bool = True,
               bn_gamma_initializer: str = "ones",
               activation: Optional[str] = None,
               kernel_initializer="he_normal",
               **kwargs):
    super().__init__(**kwargs)
    if use_bias and use_bn:
      raise ValueError(f"{self.name}: use_bias and use_bn are exclusive.")
    self.filters = filters
    self.use_bias = use_bias
    self.use_bn = use_bn
    self.bn_gamma_initializer = bn_gamma_initializer
    self.activation = activation
    self.kernel_initializer = kernel_initializer
    self.conv = tf_keras.layers.Conv1D(
        filters, 1, use_bias=use_bias, kernel_initializer=kernel_initializer,
        name="conv")
    self.batch_norm = (normalization.batch_norm(
        "batch_norm", gamma_initializer=bn_gamma_initializer) if use_bn else None)
    self._activation_fn = activations.get_activation(activation)

  def call(self, inputs, training=None):
    x = self.conv(inputs)
    if self.batch_norm is not None:
      x = self.batch_norm(x, training=training)
    if self._activation_fn is not None:
      x = self._activation_fn(x)
    return x

  def get_config(self):
    config = super().get_config()
    config.update(
        filters=self.filters, use_bias=self.use_bias, use_bn=self.use_bn,
        bn_gamma_initializer=self.bn_gamma_initializer,
        activation=self.activation, kernel_initializer=self.kernel_initializer)
    return config
