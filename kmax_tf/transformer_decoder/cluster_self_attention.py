"""Multi-head self-attention among cluster centers (kMaX-DeepLab decoder).

In kMaX-DeepLab, after the k-means
cross-attention, cluster centers exchange information by self-attention, in
the memory-path form of MaX-DeepLab's dual-path transformer (Wang et al.,
CVPR 2021):

  q, k, v = split(BN(Conv1D(x)))                 per head: d_k, d_k, d_v
  w = softmax(BN_heads(q k^T))                   no 1/sqrt(d) scaling: the BN
                                                 over the head axis sets the scale
  y = act(BN_{heads x d_v}(w v))                 heads concatenated
  out = BN(Conv1D(y))                            BN gamma initialised at zero

BN_heads normalises the similarity logits per head (axis 1 of
[B, heads, N, N]); the retrieved values are normalised per (head, channel), i.e.
per channel of the concatenated output.
"""
import tensorflow as tf
import tf_keras

from kmax_tf.layers import activations
from kmax_tf.layers import conv_bn_act
from kmax_tf.layers import normalization


def _split_heads(x, num_heads):
  """[B, N, heads * d] -> [B, heads, N, d]."""
  length, channels = x.shape[1], x.shape[2]
  x = tf.reshape(x, [-1, length, num_heads, channels // num_heads])
  return tf.transpose(x, [0, 2, 1, 3])


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class ClusterSelfAttention(tf_keras.layers.Layer):
  """Self-attention over [B, N, C] cluster features; returns [B, N, output_channels].

  Args:
    key_channels: total query/key channels over all heads (d_k * num_heads).
    value_channels: total value channels over all heads (d_v * num_heads).
    output_channels: channels of the output projection.
    num_heads: attention heads; must divide key_channels and value_channels.
    activation: activation name (see kmax_tf.layers.activations) applied to the
      retrieved values.
    kernel_stddev: stddev of the truncated-normal init of the qkv projection.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               key_channels: int = 128,
               value_channels: int = 256,
               output_channels: int = 256,
               num_heads: int = 8,
               activation: str = "gelu",
               kernel_stddev: float = 256 ** -0.5,
               **kwargs):
    super().__init__(**kwargs)
    if key_channels % num_heads or value_channels % num_heads:
      raise ValueError(f"{self.name}: key_channels ({key_channels}) and value_channels "
                       f"({value_channels}) must be divisible by num_heads ({num_heads}).")
    self.key_channels = key_channels
    self.value_channels = value_channels
    self.output_channels = output_channels
    self.num_heads = num_heads
    self.activation = activation
    self.kernel_stddev = kernel_stddev

    self.qkv = conv_bn_act.Conv1DBNAct(
        2 * key_channels + value_channels, activation=None,
        kernel_initializer={"class_name": "TruncatedNormal",
                            "config": {"stddev": kernel_stddev}},
        name="memory_qkv_conv_bn")
    self.similarity_batch_norm = normalization.batch_norm("batch_norm_similarity", axis=1)
    self.retrieved_value_batch_norm = normalization.batch_norm(
        "batch_norm_retrieved_value", axis=[1, 3])
    self.output_projection = conv_bn_act.Conv1DBNAct(
        output_channels, activation=None, bn_gamma_initializer="zeros",
        name="memory_conv3_bn")
    self._activation_fn = activations.get_activation(activation)

  def call(self, inputs, training=None):
    length = inputs.shape[1]
    qkv = self.qkv(inputs, training=training)
    query, key, value = tf.split(
        qkv, [self.key_channels, self.key_channels, self.value_channels], axis=-1)
    query = _split_heads(query, self.num_heads)
    key = _split_heads(key, self.num_heads)
    # Values stay [B, N, heads, d_v]: the retrieval einsum reads them that way.
    value = tf.reshape(value, [-1, length, self.num_heads, self.value_channels // self.num_heads])

    similarity = tf.einsum("bhld,bhmd->bhlm", query, key)
    similarity = self.similarity_batch_norm(similarity, training=training)
    weights = tf.nn.softmax(similarity, axis=-1)
    retrieved = tf.einsum("bhlm,bmhd->bhld", weights, value)
    retrieved = self.retrieved_value_batch_norm(retrieved, training=training)
    if self._activation_fn is not None:
      retrieved = self._activation_fn(retrieved)
    retrieved = tf.reshape(tf.transpose(retrieved, [0, 2, 1, 3]),
                           [-1, length, self.value_channels])
    return self.output_projection(retrieved, training=training)

  def get_config(self):
    config = super().get_config()
    config.update(key_channels=self.key_channels, value_channels=self.value_channels,
                  output_channels=self.output_channels, num_heads=self.num_heads,
                  activation=self.activation, kernel_stddev=self.kernel_stddev)
    return config
