"""2-D axial attention: height-axis then width-axis attention.

Axial-DeepLab (Wang et al., ECCV 2020) replaces the 3x3 convolution of a
bottleneck block with this pair of 1-D attentions; kMaX-DeepLab uses it in its
axial-ResNet backbone and pixel decoder. A stride is
applied by subsampling after each axis (height after the height attention,
width after the width attention), as DeepLab2 does, so a strided layer still
attends over the full-resolution axis first.
"""
import tensorflow as tf
import tf_keras

from kmax_tf.layers import axial_attention


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class AxialAttention2D(tf_keras.layers.Layer):
  """[B, H, W, C] -> [B, H/s, W/s, round(filters * value_expansion)].

  Sub-layers: `height_axis`, `width_axis` (AxialAttention), with
  round(filters * key_expansion) query/key channels.

  Args:
    filters: base channel count the key and value depths are scaled from.
    strides: spatial stride, applied by subsampling after each axis attention.
    key_expansion: query/key channels = round(filters * key_expansion).
    value_expansion: value and output channels =
      round(filters * value_expansion).
    num_heads: attention heads per axis.
    query_shape: longest supported H and W (global attention only).
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               filters: int = 512,
               strides: int = 1,
               key_expansion: float = 1.0,
               value_expansion: float = 2.0,
               num_heads: int = 8,
               query_shape: int = 129,
               **kwargs):
    super().__init__(**kwargs)
    self.filters = filters
    self.strides = strides
    self.key_expansion = key_expansion
    self.value_expansion = value_expansion
    self.num_heads = num_heads
    self.query_shape = query_shape
    self._key_depth = int(round(filters * key_expansion))
    self._value_depth = int(round(filters * value_expansion))
    self.height_axis = axial_attention.AxialAttention(
        total_key_depth=self._key_depth, total_value_depth=self._value_depth,
        num_heads=num_heads, query_shape=query_shape, name="height_axis")
    self.width_axis = axial_attention.AxialAttention(
        total_key_depth=self._key_depth, total_value_depth=self._value_depth,
        num_heads=num_heads, query_shape=query_shape, name="width_axis")

  def call(self, inputs, training=None):
    _, height, width, channels = inputs.shape
    if height is None or width is None:
      raise ValueError(f"{self.name}: axial attention needs static height and width.")
    # Columns become batch entries so the height attention runs along H.
    x = tf.reshape(tf.transpose(inputs, [0, 2, 1, 3]), [-1, height, channels])
    x = self.height_axis(x, training=training)
    x = tf.transpose(tf.reshape(x, [-1, width, height, self._value_depth]), [0, 2, 1, 3])
    if self.strides > 1:
      x = x[:, ::self.strides, :, :]
    strided_height = x.shape[1]
    x = self.width_axis(tf.reshape(x, [-1, width, self._value_depth]), training=training)
    x = tf.reshape(x, [-1, strided_height, width, self._value_depth])
    if self.strides > 1:
      x = x[:, :, ::self.strides, :]
    return x

  def compute_output_shape(self, input_shape):
    batch, height, width, _ = input_shape
    s = self.strides
    return tf.TensorShape([batch, -(-height // s), -(-width // s), self._value_depth])

  def get_config(self):
    config = super().get_config()
    config.update(
        filters=self.filters, strides=self.strides, key_expansion=self.key_expansion,
        value_expansion=self.value_expansion, num_heads=self.num_heads,
        query_shape=self.query_shape)
    return config
