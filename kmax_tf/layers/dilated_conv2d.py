"""A stride-1 dilated ("atrous") 2-D convolution that runs as one native op.

The dilated 3x3 convolutions of the ASPP in kMaX-DeepLab's auxiliary semantic
decoder (Yu et al., "k-means Mask Transformer", ECCV 2022; ASPP from Chen et
al., "Rethinking Atrous Convolution for Semantic Image Segmentation", 2017).

`tf.nn.convolution` (what Keras `Conv2D` calls) implements dilation with
space_to_batch / batch_to_space, because TF's Eigen CPU kernels have no dilated
gradient. At the stride-32 ASPP the padding this adds dwarfs the feature map
(9x9 at a 257 crop becomes 324 blocks of 3x3 per image for rate 18), and those
three convolutions took 13% of the R50 training step's op time on this
machine. GPUs, TPUs and the oneDNN CPU kernels (the default of x86 TensorFlow
wheels) run `Conv2D` with `dilations` directly, forward and backward: 4-15x
faster here, same result up to float32 summation order (relative 2e-6).

Where the native op has no gradient (CPU TensorFlow without oneDNN, e.g.
TF_ENABLE_ONEDNN_OPTS=0), the layer computes the same convolution through
`tf.nn.convolution`; which path is taken is decided once per process by
`native_dilation_supported()` and is logged.
"""
import functools

from absl import logging
import tensorflow as tf
import tf_keras


@functools.lru_cache(maxsize=None)
def native_dilation_supported() -> bool:
  """Whether this TensorFlow differentiates a dilated Conv2D on the CPU."""
  try:
    with tf.init_scope(), tf.device("/CPU:0"):
      x = tf.zeros([1, 3, 3, 1])
      kernel = tf.zeros([3, 3, 1, 1])
      with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.nn.conv2d(x, kernel, 1, "SAME", dilations=2)
      tape.gradient(y, x)
  except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
    logging.info("Dilated Conv2D has no CPU gradient here (%s); dilated convolutions use "
                 "tf.nn.convolution (space_to_batch).", str(error).splitlines()[0])
    return False
  return True


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class DilatedConv2D(tf_keras.layers.Conv2D):
  """Keras `Conv2D` (same variables and config) whose dilated case is one Conv2D op."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    if tuple(self.strides) != (1, 1):
      raise ValueError(f"{self.name}: DilatedConv2D is stride 1, got strides={self.strides}.")
    if self.groups != 1 or self.data_format != "channels_last":
      raise ValueError(f"{self.name}: DilatedConv2D needs groups=1 and channels_last, got "
                       f"groups={self.groups}, data_format={self.data_format}.")

  def convolution_op(self, inputs, kernel):
    if max(self.dilation_rate) == 1 or not native_dilation_supported():
      return super().convolution_op(inputs, kernel)
    return tf.nn.conv2d(inputs, kernel, strides=1, padding=self.padding.upper(),
                        dilations=list(self.dilation_rate), name=self.__class__.__name__)
