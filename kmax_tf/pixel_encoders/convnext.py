"""ConvNeXt pixel encoder (Liu et al., "A ConvNet for the 2020s", CVPR 2022).

As used by kMaX-DeepLab in
DeepLab2: a 4x4/4 patchify stem and three 2x2/2 downsampling layers, each
followed by a stage of `ConvNeXtBlock`s. Input is the normalized image
(image / 127.5 - 1), [B, H, W, 3]. Named sizes: `convnext_sizes.CONVNEXT_SIZES`.

Returned endpoints (DeepLab2's names): `stage1` (stem output, stride 4),
`stage2`..`stage5` (outputs of the four block stages, strides 4, 8, 16, 32), all
pre-activation, and `res1`..`res5` = exact GELU of the matching `stageN`.
`stage1` and `stage2` share stride 4: the stem is not followed by a stage of its
own.

With `zero_padding_for_downstream` (what kMaX-DeepLab uses), the stem pads
1 row/column at the top/left and 2 at the bottom/right, and every downsampling
layer pads 1 at the bottom/right, so odd crop sizes such as 641 = 32k + 1 give
ceil(H / stride) outputs (257 -> 65, 33, 17, 9).
"""
from typing import Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from kmax_tf.layers import activations
from kmax_tf.layers import convnext_block

_STEM_PADDING = (1, 2)
_DOWNSAMPLE_PADDING = (0, 1)


def drop_path_keep_probs(drop_path_keep_prob: float, num_blocks: int):
  """Per-block keep probabilities, linear from 1.0 to `drop_path_keep_prob`.

  Computed in float32 like DeepLab2's `tf.linspace(1.0, p, n)`, so the values
  the training graph sees are the same float32 numbers.

  Args:
    drop_path_keep_prob: keep probability of the last block.
    num_blocks: blocks over all stages.

  Returns:
    A list of num_blocks floats.
  """
  rates = np.linspace(np.float32(1.0), np.float32(drop_path_keep_prob), num_blocks,
                      dtype=np.float32)
  return [float(r) for r in rates]


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class ConvNeXt(tf_keras.layers.Layer):
  """ConvNeXt backbone returning DeepLab2's endpoint dict.

  Sub-layers (the checkpoint importer relies on these attribute names):
  `stem_conv`, `stem_norm`, `downsample_norms[i]` / `downsample_convs[i]` for the
  downsampling layers before stages 1..3, and `stages[s][j]` (ConvNeXtBlock).

  Args:
    depths: ConvNeXt blocks in each of the four stages.
    dims: channels of each of the four stages.
    drop_path_keep_prob: keep probability of the last block; earlier blocks
      are linear from 1.0 to it. 1.0 disables drop path.
    layer_scale_init_value: see ConvNeXtBlock.
    zero_padding_for_downstream: pad the stem and downsampling layers so that
      an input of H pixels gives ceil(H / stride) outputs (see the module
      docstring).
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               depths: Sequence[int] = (3, 3, 9, 3),
               dims: Sequence[int] = (96, 192, 384, 768),
               drop_path_keep_prob: float = 1.0,
               layer_scale_init_value: float = 1e-6,
               zero_padding_for_downstream: bool = True,
               **kwargs):
    super().__init__(**kwargs)
    if len(depths) != 4 or len(dims) != 4:
      raise ValueError(f"{self.name}: depths and dims need 4 entries, got {depths}, {dims}.")
    self.depths = tuple(int(d) for d in depths)
    self.dims = tuple(int(d) for d in dims)
    self.drop_path_keep_prob = float(drop_path_keep_prob)
    self.layer_scale_init_value = float(layer_scale_init_value)
    self.zero_padding_for_downstream = bool(zero_padding_for_downstream)

    def conv(filters, size, name):
      return tf_keras.layers.Conv2D(
          filters, size, strides=size, padding="valid",
          kernel_initializer=convnext_block.truncated_normal_initializer(),
          bias_initializer="zeros", name=name)

    def layer_norm(name):
      return tf_keras.layers.LayerNormalization(
          epsilon=convnext_block.LAYER_NORM_EPSILON, name=name)

    self.stem_conv = conv(self.dims[0], 4, "stem_conv")
    self.stem_norm = layer_norm("stem_norm")
    self.downsample_norms = [layer_norm(f"downsample{i}_norm") for i in range(1, 4)]
    self.downsample_convs = [conv(self.dims[i], 2, f"downsample{i}_conv") for i in range(1, 4)]

    keep_probs = drop_path_keep_probs(self.drop_path_keep_prob, sum(self.depths))
    self.stages = []
    first = 0
    for s, (depth, dim) in enumerate(zip(self.depths, self.dims)):
      self.stages.append([
          convnext_block.ConvNeXtBlock(
              dim, drop_path_keep_prob=keep_probs[first + j],
              layer_scale_init_value=self.layer_scale_init_value,
              name=f"convnext_block_{s}_{j}")
          for j in range(depth)])
      first += depth
    self._gelu = activations.get_activation("gelu")

  def _pad(self, x, before_after):
    if not self.zero_padding_for_downstream:
      return x
    return tf.pad(x, [[0, 0], list(before_after), list(before_after), [0, 0]])

  def call(self, inputs, training=None):
    endpoints = {}
    x = self.stem_norm(self.stem_conv(self._pad(inputs, _STEM_PADDING)))
    endpoints["stage1"] = x
    endpoints["res1"] = self._gelu(x)
    for s, blocks in enumerate(self.stages):
      if s > 0:
        x = self._pad(x, _DOWNSAMPLE_PADDING)
        x = self.downsample_convs[s - 1](self.downsample_norms[s - 1](x))
      for block in blocks:
        x = block(x, training=training)
      endpoints[f"stage{s + 2}"] = x
      endpoints[f"res{s + 2}"] = self._gelu(x)
    return endpoints

  def get_config(self):
    config = super().get_config()
    config.update(depths=list(self.depths),
                  dims=list(self.dims),
                  drop_path_keep_prob=self.drop_path_keep_prob,
                  layer_scale_init_value=self.layer_scale_init_value,
                  zero_padding_for_downstream=self.zero_padding_for_downstream)
    return config
