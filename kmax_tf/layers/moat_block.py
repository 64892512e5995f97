"""MOAT block (Yang et al., "MOAT: Alternating Mobile Convolution and
Attention Brings Strong Vision Models", ICLR 2023).

An MBConv block without squeeze-and-excitation (it carries the block's
stride) followed by a pre-LayerNorm global self-attention with its own
residual, as DeepLab2 builds it for kMaX-DeepLab:

  x = MBConv(x)                                   # incl. its residual
  out = x + drop_path(attention(layer_norm(x)))

Both residuals use the same drop-path keep probability.
"""
from typing import Optional

import tf_keras

from kmax_tf.layers import drop_path
from kmax_tf.layers import mbconv_block
from kmax_tf.layers import moat_attention

LAYER_NORM_EPSILON = 1e-5  # DeepLab2's MOAT ln_epsilon.


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class MOATBlock(tf_keras.layers.Layer):
  """MBConv + global attention block on [B, H, W, C] -> [B, H/s, W/s, hidden_size].

  Sub-layers: `mbconv` (MBConvBlock, se_ratio None), `attention_norm`,
  `attention` (MOATAttention), `drop_path`.

  Args:
    hidden_size: output channels of the MBConv and the attention.
    stride: spatial stride s of the MBConv.
    expansion_rate: see MBConvBlock.
    head_size: channels per attention head.
    position_embedding_size: see MOATAttention; None for no position bias.
    kernel_size: see MBConvBlock.
    pool_size: see MBConvBlock.
    drop_path_keep_prob: keep probability (0, 1] of both residual branches in
      training; 1.0 disables drop path.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               hidden_size: int,
               stride: int = 1,
               expansion_rate: int = 4,
               head_size: int = 32,
               position_embedding_size: Optional[int] = None,
               kernel_size: int = 3,
               pool_size: int = 3,
               drop_path_keep_prob: float = 1.0,
               **kwargs):
    super().__init__(**kwargs)
    self.hidden_size = int(hidden_size)
    self.stride = int(stride)
    self.expansion_rate = int(expansion_rate)
    self.head_size = int(head_size)
    self.position_embedding_size = (None if position_embedding_size is None
                                    else int(position_embedding_size))
    self.kernel_size = int(kernel_size)
    self.pool_size = int(pool_size)
    self.drop_path_keep_prob = float(drop_path_keep_prob)
    self.mbconv = mbconv_block.MBConvBlock(
        self.hidden_size, stride=self.stride, expansion_rate=self.expansion_rate,
        se_ratio=None, kernel_size=self.kernel_size, pool_size=self.pool_size,
        drop_path_keep_prob=self.drop_path_keep_prob, name="mbconv")
    self.attention_norm = tf_keras.layers.LayerNormalization(
        epsilon=LAYER_NORM_EPSILON, name="attention_norm")
    self.attention = moat_attention.MOATAttention(
        self.hidden_size, head_size=self.head_size,
        position_embedding_size=self.position_embedding_size, name="attention")
    self.drop_path = drop_path.DropPath(self.drop_path_keep_prob, name="drop_path")

  def call(self, inputs, training=None):
    x = self.mbconv(inputs, training=training)
    return x + self.drop_path(self.attention(self.attention_norm(x)), training=training)

  def get_config(self):
    config = super().get_config()
    config.update(hidden_size=self.hidden_size, stride=self.stride,
                  expansion_rate=self.expansion_rate, head_size=self.head_size,
                  position_embedding_size=self.position_embedding_size,
                  kernel_size=self.kernel_size, pool_size=self.pool_size,
                  drop_path_keep_prob=self.drop_path_keep_prob)
    return config
