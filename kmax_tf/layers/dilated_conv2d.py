"""A stride-1 dilated ("atrous") 2-D convolution, computed the fastest exact way here.

The dilated 3x3 convolutions of kMaX-DeepLab's pixel decoder (its stride-32
stage runs as a stride-16 ResNet stage with atrous rate 2) and of the ASPP in
its auxiliary semantic decoder (Chen et al., "Rethinking Atrous Convolution for
Semantic Image Segmentation", 2017).

Two facts make Keras `Conv2D` (`tf.nn.convolution`) slow here:

- It implements dilation with space_to_batch / batch_to_space, because
  TensorFlow's own (Eigen) CPU kernels have no dilated gradient. At the
  stride-32 ASPP the padding dwarfs the feature map (9x9 at a 257 crop becomes
  324 blocks of 3x3 per image for rate 18), and Eigen's input gradient of that
  many tiny images took 45% of the R50 training step's op time with oneDNN off.
- With "same" padding, a tap whose offset (rate times its distance from the
  centre) is at least the map's size only ever reads padding: at a 257 crop,
  rates 12 and 18 of the ASPP reduce to the centre tap, a 1x1 convolution.

So the layer drops the taps that only read padding (when the map's size is
known when the graph is built) and computes what is left as one native
`Conv2D` with `dilations` where that op has a gradient (oneDNN, GPUs, TPUs),
else as one matrix product over the live taps' shifted views of the padded
input (Eigen's matrix products are fast, its convolution gradients are not).
Every path computes the same sum; they differ only in float32 summation order.
`kmax_tf.kernel_choices` decides native or not, once per process.
"""
import tensorflow as tf
import tf_keras

from kmax_tf import kernel_choices


def live_taps(kernel_size: int, rate: int, size) -> int:
  """How many centred taps of a "same"-padded dilated kernel can read the input.

  Args:
    kernel_size: taps along the axis (odd).
    rate: dilation rate along the axis.
    size: the input's length along the axis, or None if unknown when building.

  Returns:
    An odd number <= kernel_size: taps at offsets -(n//2)*rate .. (n//2)*rate.
  """
  if size is None or kernel_size % 2 == 0:
    return kernel_size
  reach = (kernel_size - 1) // 2
  while reach > 0 and reach * rate >= size:
    reach -= 1
  return 2 * reach + 1


def shifted_matmul_conv2d(inputs, kernel, rates):
  """A stride-1, "same"-padded dilated Conv2D as one matrix product of shifted views.

  Args:
    inputs: [batch, height, width, in_channels].
    kernel: [kh, kw, in_channels, out_channels], kh and kw odd.
    rates: (rate_h, rate_w).

  Returns:
    [batch, height, width, out_channels], the convolution's value; its gradient
    is made of slices, a concat and matrix products, which every CPU kernel set has.
  """
  kh, kw, cin, cout = kernel.shape
  pad_h, pad_w = (kh - 1) // 2 * rates[0], (kw - 1) // 2 * rates[1]
  padded = tf.pad(inputs, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]])
  shape = tf.shape(inputs)
  height, width = shape[1], shape[2]
  views = [padded[:, i * rates[0]:i * rates[0] + height, j * rates[1]:j * rates[1] + width, :]
           for i in range(kh) for j in range(kw)]
  columns = views[0] if len(views) == 1 else tf.concat(views, axis=-1)
  # The kernel's [kh, kw, cin] order is the order of the concatenated views.
  return tf.nn.conv2d(columns, tf.reshape(kernel, [1, 1, kh * kw * cin, cout]), 1, "VALID")


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class DilatedConv2D(tf_keras.layers.Conv2D):
  """Keras `Conv2D` (same variables and config), stride 1, computed as the module says."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    if tuple(self.strides) != (1, 1):
      raise ValueError(f"{self.name}: DilatedConv2D is stride 1, got strides={self.strides}.")
    if self.groups != 1 or self.data_format != "channels_last":
      raise ValueError(f"{self.name}: DilatedConv2D needs groups=1 and channels_last, got "
                       f"groups={self.groups}, data_format={self.data_format}.")

  def convolution_op(self, inputs, kernel):
    """Stride-1 "same" convolution, dropping taps that only read padding.

    Args:
      inputs: [batch, height, width, in_channels].
      kernel: [kh, kw, in_channels, out_channels], the layer's kernel.

    Returns:
      [batch, height, width, out_channels], without the bias.
    """
    rates = tuple(self.dilation_rate)
    if max(rates) == 1 or self.padding != "same":
      return super().convolution_op(inputs, kernel)
    kh, kw = self.kernel_size
    live_h = live_taps(kh, rates[0], inputs.shape[1])
    live_w = live_taps(kw, rates[1], inputs.shape[2])
    kernel = kernel[(kh - live_h) // 2:(kh + live_h) // 2, (kw - live_w) // 2:(kw + live_w) // 2]
    rates = (rates[0] if live_h > 1 else 1, rates[1] if live_w > 1 else 1)
    if max(rates) == 1 or kernel_choices.kernel_choices().native_dilated_conv:
      return tf.nn.conv2d(inputs, kernel, strides=1, padding="SAME", dilations=list(rates),
                          name=self.__class__.__name__)
    return shifted_matmul_conv2d(inputs, kernel, rates)
