"""ConvNeXt block (Liu et al., "A ConvNet for the 2020s", CVPR 2022).

The block of the ConvNeXt pixel encoder that kMaX-DeepLab uses, computed in channels-last layout as
DeepLab2 does:

  x + drop_path(layer_scale * dense(gelu(dense(layer_norm(dwconv7x7(x))))))

Numerical choices that checkpoint parity depends on:
- the 7x7 depthwise convolution keeps the weights of a grouped `Conv2D`
  (kernel [7, 7, 1, C], the layout of DeepLab2 checkpoints) but runs them as
  `tf.nn.depthwise_conv2d` on the same kernel reshaped to [7, 7, C, 1]. Keras
  runs grouped convolutions on CPU through an XLA-compiled function that took
  45% of the ConvNeXt-T forward time at 641x641 (1.3 of 2.9 op-seconds); the
  depthwise kernel computes the same sums in another order (float32 round-off
  only, well inside the parity tolerance);
- LayerNormalization epsilon is 1e-6 (below the fused-kernel minimum, so Keras
  uses moments + batch_normalization, as in DeepLab2);
- GELU is the exact erf form;
- the two pointwise convolutions are `Dense` layers on [B, H, W, C].
"""
import tensorflow as tf
import tf_keras

from kmax_tf.layers import activations
from kmax_tf.layers import drop_path

# Initializers of the official ConvNeXt, kept so that training from scratch
# starts from the same distribution as DeepLab2.
_KERNEL_STDDEV = 0.02
LAYER_NORM_EPSILON = 1e-6


def truncated_normal_initializer():
  return tf_keras.initializers.TruncatedNormal(stddev=_KERNEL_STDDEV)


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class ConvNeXtBlock(tf_keras.layers.Layer):
  """Residual ConvNeXt block on [B, H, W, dim] features.

  Sub-layers (the checkpoint importer relies on these attribute names):
  `depthwise_conv`, `norm`, `pointwise_conv1`, `pointwise_conv2`,
  `drop_path`, and the weight `layer_scale` (None if layer_scale_init_value
  <= 0).

  Args:
    dim: channels of the input and output (the MLP hides 4 * dim).
    drop_path_keep_prob: probability (0, 1] of keeping the residual branch per
      example in training; 1.0 disables drop path.
    layer_scale_init_value: initial value of the per-channel scale of the
      residual branch; <= 0 builds no layer scale.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               dim: int,
               drop_path_keep_prob: float = 1.0,
               layer_scale_init_value: float = 1e-6,
               **kwargs):
    super().__init__(**kwargs)
    self.dim = dim
    self.drop_path_keep_prob = float(drop_path_keep_prob)
    self.layer_scale_init_value = float(layer_scale_init_value)

    self.depthwise_conv = tf_keras.layers.Conv2D(
        dim, 7, padding="same", groups=dim,
        kernel_initializer=truncated_normal_initializer(),
        bias_initializer="zeros", name="depthwise_conv")
    self.norm = tf_keras.layers.LayerNormalization(
        epsilon=LAYER_NORM_EPSILON, name="norm")
    self.pointwise_conv1 = tf_keras.layers.Dense(
        4 * dim, kernel_initializer=truncated_normal_initializer(),
        bias_initializer="zeros", name="pointwise_conv1")
    self.pointwise_conv2 = tf_keras.layers.Dense(
        dim, kernel_initializer=truncated_normal_initializer(),
        bias_initializer="zeros", name="pointwise_conv2")
    self.drop_path = drop_path.DropPath(self.drop_path_keep_prob, name="drop_path")
    self._gelu = activations.get_activation("gelu")
    self.layer_scale = None

  def build(self, input_shape):
    if input_shape[-1] != self.dim:
      raise ValueError(f"{self.name}: expected {self.dim} input channels, got {input_shape[-1]}.")
    if self.layer_scale_init_value > 0:
      self.layer_scale = self.add_weight(
          name="layer_scale", shape=(1, 1, 1, self.dim),
          initializer=tf_keras.initializers.Constant(self.layer_scale_init_value),
          trainable=True)
    self.depthwise_conv.build(input_shape)
    super().build(input_shape)

  def call(self, inputs, training=None):
    kernel = self.depthwise_conv.kernel
    # [7, 7, 1, C] -> [7, 7, C, 1] is a pure reshape: the group axis has size 1.
    kernel = tf.reshape(kernel, [kernel.shape[0], kernel.shape[1], self.dim, 1])
    x = tf.nn.depthwise_conv2d(inputs, tf.cast(kernel, inputs.dtype), [1, 1, 1, 1], "SAME")
    x = tf.nn.bias_add(x, tf.cast(self.depthwise_conv.bias, inputs.dtype))
    x = self.norm(x)
    x = self.pointwise_conv1(x)
    x = self._gelu(x)
    x = self.pointwise_conv2(x)
    if self.layer_scale is not None:
      x = self.layer_scale * x
    return inputs + self.drop_path(x, training=training)

  def get_config(self):
    config = super().get_config()
    config.update(dim=self.dim,
                  drop_path_keep_prob=self.drop_path_keep_prob,
                  layer_scale_init_value=self.layer_scale_init_value)
    return config
