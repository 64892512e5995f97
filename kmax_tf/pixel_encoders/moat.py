"""MOAT pixel encoder (Yang et al., "MOAT: Alternating Mobile Convolution and
Attention Brings Strong Vision Models", ICLR 2023).

As DeepLab2 builds it for kMaX-DeepLab: a stem of 3x3
convolutions (the first with stride 2; BN + GELU between them, none after the
last), then four stages whose first block has stride 2: two stages of
MBConv blocks (with squeeze-and-excitation) and two of MOAT blocks with global
self-attention over the whole feature map. Shortcut pools are 3x3 (DeepLab2's
choice for downstream tasks). Named sizes: `moat_sizes.MOAT_SIZES`.

Returned endpoints (DeepLab2's names): `stage1` (stem output, stride 2),
`stage2`..`stage5` (strides 4, 8, 16, 32), all pre-activation, and
`res1`..`res5` = exact GELU of the matching `stageN`. With 'same' padding an
input of H gives ceil(H / stride) outputs (641 -> 321, 161, 81, 41, 21).

Input: the kMaX model passes image / 127.5 - 1. With
`input_normalization="imagenet"` the encoder turns it into
(image - 255 * mean) / (255 * std) with ImageNet's mean and std, the
normalization DeepLab2's MOAT-0/1 and tiny-MOAT ImageNet checkpoints were
trained with; "inception" (the default, DeepLab2's kMaX behaviour) uses it
as is.

Drop path: block b of N (counting over all stages from 0) keeps its residual
branches with probability 1 - (1 - drop_path_keep_prob) * b / N, DeepLab2's
schedule (so the last block does not reach drop_path_keep_prob).
"""
from typing import Sequence

import tensorflow as tf
import tf_keras

from kmax_tf.layers import activations
from kmax_tf.layers import mbconv_block
from kmax_tf.layers import moat_block
from kmax_tf.layers import normalization
from kmax_tf.layers import squeeze_and_excitation

INPUT_NORMALIZATIONS = ("inception", "imagenet")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Position embedding sizes of the MOAT stages (None: MBConv stages).
POSITION_EMBEDDING_SIZES = (None, None, 14, 7)
BLOCK_TYPES = ("mbconv", "moat")


def survival_probabilities(drop_path_keep_prob: float, num_blocks: int):
  """DeepLab2's per-block keep probabilities (block 0 keeps everything).

  Args:
    drop_path_keep_prob: the schedule's end point (not reached by the last
      block).
    num_blocks: N, blocks over all stages.

  Returns:
    A list of N floats, 1 - (1 - drop_path_keep_prob) * b / N for block b.
  """
  drop = 1.0 - drop_path_keep_prob
  return [1.0 - drop * b / num_blocks for b in range(num_blocks)]


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class MOAT(tf_keras.layers.Layer):
  """MOAT backbone returning DeepLab2's endpoint dict.

  Sub-layers (the checkpoint importer relies on these attribute names):
  `stem_convs[i]`, `stem_norms[i]` (one fewer than convs), and
  `stages[s][j]` (MBConvBlock or MOATBlock).

  Args:
    stem_sizes: channels of each 3x3 stem convolution (the first is strided).
    block_types: 'mbconv' or 'moat' for each of the four stages.
    num_blocks: blocks in each of the four stages.
    hidden_sizes: output channels of each of the four stages.
    use_position_embedding: give MOAT stages a relative position bias (table
      sizes POSITION_EMBEDDING_SIZES).
    drop_path_keep_prob: end point of the drop-path schedule (see the module
      docstring); 1.0 disables drop path.
    input_normalization: 'inception' (use the input, image / 127.5 - 1, as is)
      or 'imagenet' (convert it to ImageNet mean/std normalization).
    expansion_rate: see MBConvBlock.
    se_ratio: squeeze-and-excitation ratio of the MBConv stages.
    head_size: channels per attention head of the MOAT stages.
    pool_size: shortcut average-pool window of strided blocks.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               stem_sizes: Sequence[int] = (32, 32),
               block_types: Sequence[str] = ("mbconv", "mbconv", "moat", "moat"),
               num_blocks: Sequence[int] = (2, 3, 7, 2),
               hidden_sizes: Sequence[int] = (32, 64, 128, 256),
               use_position_embedding: bool = True,
               drop_path_keep_prob: float = 1.0,
               input_normalization: str = "inception",
               expansion_rate: int = 4,
               se_ratio: float = 0.25,
               head_size: int = 32,
               pool_size: int = 3,
               **kwargs):
    super().__init__(**kwargs)
    if not len(block_types) == len(num_blocks) == len(hidden_sizes) == 4:
      raise ValueError(f"{self.name}: block_types, num_blocks and hidden_sizes need 4 "
                       f"entries, got {block_types}, {num_blocks}, {hidden_sizes}.")
    unknown = [t for t in block_types if t not in BLOCK_TYPES]
    if unknown:
      raise ValueError(f"{self.name}: block types must be in {BLOCK_TYPES}, got {unknown}.")
    if input_normalization not in INPUT_NORMALIZATIONS:
      raise ValueError(f"{self.name}: input_normalization must be one of "
                       f"{INPUT_NORMALIZATIONS}, got {input_normalization!r}.")
    if not stem_sizes:
      raise ValueError(f"{self.name}: stem_sizes needs at least one entry.")
    self.stem_sizes = tuple(int(s) for s in stem_sizes)
    self.block_types = tuple(block_types)
    self.num_blocks = tuple(int(n) for n in num_blocks)
    self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
    self.use_position_embedding = bool(use_position_embedding)
    self.drop_path_keep_prob = float(drop_path_keep_prob)
    self.input_normalization = input_normalization
    self.expansion_rate = int(expansion_rate)
    self.se_ratio = float(se_ratio)
    self.head_size = int(head_size)
    self.pool_size = int(pool_size)

    self.stem_convs = [
        tf_keras.layers.Conv2D(
            size, 3, strides=2 if i == 0 else 1, padding="same", use_bias=True,
            kernel_initializer=squeeze_and_excitation.moat_kernel_initializer(),
            bias_initializer="zeros", name=f"stem_conv_{i}")
        for i, size in enumerate(self.stem_sizes)]
    self.stem_norms = [
        normalization.batch_norm(f"stem_norm_{i}", **normalization.KERAS_DEFAULT_CONSTANTS)
        for i in range(len(self.stem_sizes) - 1)]
    keep_probs = survival_probabilities(self.drop_path_keep_prob, sum(self.num_blocks))
    self.stages = []
    block_id = 0
    for s, (kind, depth, hidden) in enumerate(
        zip(self.block_types, self.num_blocks, self.hidden_sizes)):
      blocks = []
      for j in range(depth):
        common = dict(stride=2 if j == 0 else 1, expansion_rate=self.expansion_rate,
                      pool_size=self.pool_size, drop_path_keep_prob=keep_probs[block_id],
                      name=f"block_{s:02d}_{j:02d}")
        if kind == "mbconv":
          blocks.append(mbconv_block.MBConvBlock(hidden, se_ratio=self.se_ratio, **common))
        else:
          pe_size = POSITION_EMBEDDING_SIZES[s] if self.use_position_embedding else None
          if self.use_position_embedding and pe_size is None:
            raise ValueError(f"{self.name}: stage {s} has no position embedding size.")
          blocks.append(moat_block.MOATBlock(hidden, head_size=self.head_size,
                                             position_embedding_size=pe_size, **common))
        block_id += 1
      self.stages.append(blocks)
    self._gelu = activations.get_activation("gelu")

  def _normalize(self, x):
    if self.input_normalization == "inception":
      return x
    mean = tf.constant([255.0 * m for m in IMAGENET_MEAN], x.dtype)
    std = tf.constant([255.0 * s for s in IMAGENET_STD], x.dtype)
    return ((x + 1.0) * 127.5 - mean) / std

  def call(self, inputs, training=None):
    x = self._normalize(inputs)
    for i, conv in enumerate(self.stem_convs):
      x = conv(x)
      if i < len(self.stem_norms):
        x = self._gelu(self.stem_norms[i](x, training=training))
    endpoints = {"stage1": x, "res1": self._gelu(x)}
    for s, blocks in enumerate(self.stages):
      for block in blocks:
        x = block(x, training=training)
      endpoints[f"stage{s + 2}"] = x
      endpoints[f"res{s + 2}"] = self._gelu(x)
    return endpoints

  def get_config(self):
    config = super().get_config()
    config.update(stem_sizes=list(self.stem_sizes), block_types=list(self.block_types),
                  num_blocks=list(self.num_blocks), hidden_sizes=list(self.hidden_sizes),
                  use_position_embedding=self.use_position_embedding,
                  drop_path_keep_prob=self.drop_path_keep_prob,
                  input_normalization=self.input_normalization,
                  expansion_rate=self.expansion_rate, se_ratio=self.se_ratio,
                  head_size=self.head_size, pool_size=self.pool_size)
    return config
