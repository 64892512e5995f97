"""A stage of residual blocks (bottleneck and/or axial) at one resolution.

Used by the (axial-)ResNet-50 pixel encoders (He et al., CVPR 2016; Wang et
al., Axial-DeepLab, ECCV 2020) and the pixel decoder of kMaX-DeepLab. DeepLab2
derives the block type,
stride, atrous rate and drop-path rate of every block from strides inside one
generic BlockGroup; here the caller states them explicitly:

  BlockGroup(filters, num_blocks, block_type='bottleneck' | 'axial' | per-block
             tuple, strides=1, dilation_rate=1, activation='relu',
             drop_path_keep_prob=1.0 | per-block tuple,
             bottleneck_expansion=2, key_expansion=1.0, value_expansion=2.0,
             num_heads=8, query_shape=129, name=...)
  y = group(x, training=...)   # x, y pre-activation [B, H, W, C], y has
                               # 4 * filters channels and H/strides rows.

Only the first block is strided. `dilation_rate` applies to the 3x3
convolutions of bottleneck blocks (axial blocks have none).

The kMaX pixel decoder's stages in DeepLab2 (pixel_decoder/kmax.py, built
with original_resnet_stride=1, original_resnet_input_stride=32 and the default
output_stride=16, hence atrous rate 32 // 16 = 2 for its bottlenecks) are:
  BlockGroup(512, 1, block_type='axial', activation='gelu')       # stride 32
  BlockGroup(256, 5, block_type='axial', activation='gelu')       # stride 16
  BlockGroup(128, 1, block_type='bottleneck', dilation_rate=2,
             activation='gelu')                                    # stride 8
  BlockGroup(64, 1, block_type='bottleneck', dilation_rate=2,
             activation='gelu')                                    # stride 4
(no drop path; outputs 2048, 1024, 512, 256 channels).

Block sub-layers are `blocks[i]`, named `block{i+1}` like DeepLab2's
`_block{i+1}` checkpoint objects.
"""
from typing import Sequence, Union

import tf_keras

from kmax_tf.layers import axial_block
from kmax_tf.layers import bottleneck_block

BLOCK_TYPES = ("bottleneck", "axial")


def _per_block(value, num_blocks, what):
  if isinstance(value, (str, int, float)):
    return [value] * num_blocks
  value = list(value)
  if len(value) != num_blocks:
    raise ValueError(f"{what}: expected {num_blocks} entries, got {value}.")
  return value


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class BlockGroup(tf_keras.layers.Layer):
  """`num_blocks` residual blocks; the first one carries the stride.

  Args:
    filters: base channels of every block; the group outputs 4 * filters.
    num_blocks: blocks in the group.
    block_type: 'bottleneck' or 'axial', or one of them per block.
    strides: spatial stride of the first block.
    dilation_rate: atrous rate of the bottleneck blocks' 3x3 convolutions.
    activation: activation name (see kmax_tf.layers.activations).
    drop_path_keep_prob: keep probability (0, 1] of the residual branch in
      training, one for all blocks or one per block; 1.0 disables drop path.
    bottleneck_expansion: see AxialBlock (axial blocks only).
    key_expansion: see AxialAttention2D (axial blocks only).
    value_expansion: see AxialAttention2D (axial blocks only).
    num_heads: attention heads per axis (axial blocks only).
    query_shape: longest supported H and W (axial blocks only).
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               filters: int,
               num_blocks: int,
               block_type: Union[str, Sequence[str]] = "bottleneck",
               strides: int = 1,
               dilation_rate: int = 1,
               activation: str = "relu",
               drop_path_keep_prob: Union[float, Sequence[float]] = 1.0,
               bottleneck_expansion: int = 2,
               key_expansion: float = 1.0,
               value_expansion: float = 2.0,
               num_heads: int = 8,
               query_shape: int = 129,
               **kwargs):
    super().__init__(**kwargs)
    block_types = _per_block(block_type, num_blocks, f"{self.name} block_type")
    keep_probs = [float(p) for p in _per_block(
        drop_path_keep_prob, num_blocks, f"{self.name} drop_path_keep_prob")]
    unknown = sorted(set(block_types) - set(BLOCK_TYPES))
    if unknown:
      raise ValueError(f"{self.name}: unknown block types {unknown}; expected {BLOCK_TYPES}.")
    self.filters = filters
    self.num_blocks = num_blocks
    self.block_type = block_type if isinstance(block_type, str) else block_types
    self.strides = strides
    self.dilation_rate = dilation_rate
    self.activation = activation
    self.drop_path_keep_prob = (float(drop_path_keep_prob)
                                if isinstance(drop_path_keep_prob, (int, float)) else keep_probs)
    self.bottleneck_expansion = bottleneck_expansion
    self.key_expansion = key_expansion
    self.value_expansion = value_expansion
    self.num_heads = num_heads
    self.query_shape = query_shape

    self.blocks = []
    for i, (kind, keep_prob) in enumerate(zip(block_types, keep_probs)):
      block_strides = strides if i == 0 else 1
      if kind == "axial":
        block = axial_block.AxialBlock(
            filters, strides=block_strides, activation=activation,
            drop_path_keep_prob=keep_prob, bottleneck_expansion=bottleneck_expansion,
            key_expansion=key_expansion, value_expansion=value_expansion,
            num_heads=num_heads, query_shape=query_shape, name=f"block{i + 1}")
      else:
        block = bottleneck_block.BottleneckBlock(
            filters, strides=block_strides, dilation_rate=dilation_rate,
            activation=activation, drop_path_keep_prob=keep_prob, name=f"block{i + 1}")
      self.blocks.append(block)

  def call(self, inputs, training=None):
    x = inputs
    for block in self.blocks:
      x = block(x, training=training)
    return x

  def get_config(self):
    config = super().get_config()
    config.update(
        filters=self.filters, num_blocks=self.num_blocks, block_type=self.block_type,
        strides=self.strides, dilation_rate=self.dilation_rate, activation=self.activation,
        drop_path_keep_prob=self.drop_path_keep_prob,
        bottleneck_expansion=self.bottleneck_expansion, key_expansion=self.key_expansion,
        value_expansion=self.value_expansion, num_heads=self.num_heads,
        query_shape=self.query_shape)
    return config
