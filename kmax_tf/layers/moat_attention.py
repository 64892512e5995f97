"""Global multi-head self-attention with 2-D relative position bias, as in MOAT.

The attention of the MOAT block (Yang et al., ICLR 2023) as DeepLab2 builds it
for kMaX-DeepLab (global attention over the whole feature map):

  q, k, v = x W_{q,k,v} + b   (per head: [C] -> [heads, head_size])
  logits  = (q / sqrt(head_size)) . k + B   B: relative position bias
  out     = softmax(logits) v W_o + b_o

B comes from a learned table of shape [heads, 2P-1, 2P-1] (P = the position
embedding size, 14 at stride 16 and 7 at stride 32 in MOAT), bilinearly
resized to [2h-1, 2w-1] for an h x w map (tf.image.resize, half-pixel
centers) and re-indexed so that B[n, (i,j), (x,y)] =
table[n, x-i+h-1, y-j+w-1].

DeepLab2 computes B once, in `build`, from the table's value at that moment
(its initializer's): assigning or restoring the table later, and training it,
does not change B there (measured on DeepLab2 64bc1c1). Here B is computed
from the variable on every call, so imported and trained tables take effect.
The re-indexing is a gather (DeepLab2 uses one-hot einsums: the same values,
each sum having a single non-zero term).
"""
from typing import Optional

import numpy as np
import tensorflow as tf
import tf_keras

from kmax_tf.layers import squeeze_and_excitation


def relative_position_indices(height: int, width: int) -> np.ndarray:
  """[h*w, h*w] flat indices into a [2h-1, 2w-1] table (row-major).

  Args:
    height: h, the feature map height in positions.
    width: w, the feature map width in positions.

  Returns:
    int32 [h*w, h*w]; entry [(i, j), (x, y)] = (x - i + h - 1) * (2w - 1) +
    (y - j + w - 1), pixels flattened row-major.
  """
  i, j = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
  i, j = i.reshape(-1), j.reshape(-1)
  rows = i[None, :] - i[:, None] + height - 1
  cols = j[None, :] - j[:, None] + width - 1
  return (rows * (2 * width - 1) + cols).astype(np.int32)


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class MOATAttention(tf_keras.layers.Layer):
  """[B, H, W, C] -> [B, H, W, hidden_size] global self-attention.

  Weights: `query_kernel`, `key_kernel`, `value_kernel` [C, heads, head_size]
  with biases [heads, head_size]; `output_kernel` [heads, head_size, hidden]
  with bias [hidden]; `relative_position_embedding` [heads, 2P-1, 2P-1] or
  None when `position_embedding_size` is None.

  Args:
    hidden_size: output channels; a multiple of head_size.
    head_size: channels per head (heads = hidden_size // head_size).
    position_embedding_size: P, the side of the learned relative position
      table (2P-1 x 2P-1 per head); None for no position bias.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               hidden_size: int,
               head_size: int = 32,
               position_embedding_size: Optional[int] = None,
               **kwargs):
    super().__init__(**kwargs)
    if hidden_size % head_size:
      raise ValueError(f"{self.name}: hidden_size {hidden_size} is not a multiple of "
                       f"head_size {head_size}.")
    self.hidden_size = int(hidden_size)
    self.head_size = int(head_size)
    self.num_heads = self.hidden_size // self.head_size
    self.position_embedding_size = (None if position_embedding_size is None
                                    else int(position_embedding_size))
    self.relative_position_embedding = None

  def build(self, input_shape):
    channels = int(input_shape[-1])
    init = squeeze_and_excitation.moat_kernel_initializer
    heads = [self.num_heads, self.head_size]
    for name in ("query", "key", "value"):
      setattr(self, f"{name}_kernel", self.add_weight(
          name=f"{name}_kernel", shape=[channels] + heads, initializer=init()))
      setattr(self, f"{name}_bias", self.add_weight(
          name=f"{name}_bias", shape=heads, initializer="zeros"))
    self.output_kernel = self.add_weight(
        name="output_kernel", shape=heads + [self.hidden_size], initializer=init())
    self.output_bias = self.add_weight(
        name="output_bias", shape=[self.hidden_size], initializer="zeros")
    if self.position_embedding_size is not None:
      size = 2 * self.position_embedding_size - 1
      self.relative_position_embedding = self.add_weight(
          name="relative_position_embedding", shape=[self.num_heads, size, size],
          initializer=init())
    super().build(input_shape)

  def _position_bias(self, height, width, dtype):
    table = self.relative_position_embedding
    table = tf.image.resize(table[..., tf.newaxis], [2 * height - 1, 2 * width - 1])
    table = tf.reshape(tf.cast(table, dtype), [self.num_heads, -1])
    return tf.gather(table, relative_position_indices(height, width), axis=1)

  def call(self, inputs):
    _, height, width, channels = inputs.shape
    if height is None or width is None:
      raise ValueError(f"{self.name}: needs a static feature-map size, got {inputs.shape}.")
    x = tf.reshape(inputs, [-1, height * width, channels])
    dtype = x.dtype

    def project(name):
      return (tf.einsum("BSC,CNK->BSNK", x, tf.cast(getattr(self, f"{name}_kernel"), dtype))
              + tf.cast(getattr(self, f"{name}_bias"), dtype))

    q = project("query") * (self.head_size ** -0.5)
    k, v = project("key"), project("value")
    logits = tf.einsum("BSNK,BTNK->BNST", q, k)
    if self.relative_position_embedding is not None:
      logits += self._position_bias(height, width, dtype)
    probs = tf.cast(tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1), dtype)
    out = tf.einsum("BNST,BTNK->BSNK", probs, v)
    out = (tf.einsum("BSNK,NKC->BSC", out, tf.cast(self.output_kernel, dtype))
           + tf.cast(self.output_bias, dtype))
    return tf.reshape(out, [-1, height, width, self.hidden_size])

  def get_config(self):
    config = super().get_config()
    config.update(hidden_size=self.hidden_size, head_size=self.head_size,
                  position_embedding_size=self.position_embedding_size)
    return config
