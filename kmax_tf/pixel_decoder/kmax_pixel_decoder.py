"""The kMaX-DeepLab pixel decoder.

k-means Mask Transformer decodes the pixel-encoder
features with a simple stacked decoder, as CMT-DeepLab (Yu et al., CVPR 2022)
and MaX-DeepLab-S (Wang et al., CVPR 2021) do: starting at stride 32, each
stage is a group of residual blocks (axial-attention blocks, Axial-DeepLab,
ECCV 2020, at strides 32 and 16, where global context is affordable; ResNet
bottlenecks at higher resolutions), and between stages a ResizedFuse upsamples
the decoder feature and adds the next finer encoder feature. Every encoder
feature is layer-normalized first, because encoders (ResNet, ConvNeXt) emit
features of very different scales.

Compatibility with DeepLab2's `KMaXPixelDecoder` (checkpoints, numbers):
- every stage is configured as if it sat at stride 32 of a ResNet with output
  stride 16, so all its blocks use atrous rate 2 (bottleneck 3x3 convs are
  dilated by 2, although they run at strides 8/4/2);
- the decoder feature of each stage is the blocks' pre-activation output; the
  next block or fuser applies the activation.
"""
from typing import Sequence, Tuple

import tensorflow as tf
import tf_keras

from kmax_tf.layers import block_group
from kmax_tf.layers import resized_fuse

AXIAL = "axial"
BOTTLENECK = "bottleneck"

# DeepLab2's builder settings per highest-resolution output stride
# (4 for COCO, 2 for Cityscapes): dims, num_blocks, block_types.
_PRESETS = {
    4: ((512, 256, 128, 64), (1, 5, 1, 1), (AXIAL, AXIAL, BOTTLENECK, BOTTLENECK)),
    2: ((512, 256, 128, 64, 32), (1, 5, 1, 1, 1),
        (AXIAL, AXIAL, BOTTLENECK, BOTTLENECK, BOTTLENECK)),
}
# The stride-32 input of a ResNet stage with output stride 16: atrous rate 2.
_DECODER_ATROUS_RATE = 2


def encoder_endpoint(stage_index: int) -> str:
  """Encoder endpoint read by decoder stage `stage_index` (0 = stride 32).

  Args:
    stage_index: decoder stage, 0 (stride 32) to 4 (stride 2).

  Returns:
    'stage5' for stage 0 down to 'stage1' for stage 4.
  """
  return f"stage{5 - stage_index}"


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class KMaXPixelDecoder(tf_keras.layers.Layer):
  """Stacked axial/bottleneck decoder over encoder endpoints stage5..stage2(1).

  Call with the encoder's endpoint dict; returns a copy with
  `decoder_stage1..decoder_stage{n-1}` (strides 32, 16, ...) and
  `decoder_output` (stride 4 for 4 stages, 2 for 5 stages) added, each with
  4 * dims[i] channels.

  Sub-layers (the checkpoint mapping relies on them): `backbone_norms`
  (LayerNormalization per stage), `stages` (BlockGroup per stage),
  `skip_connections` (ResizedFuse between stages, created in build).

  Args:
    dims: base channels of each stage's blocks, coarsest (stride 32) first;
      stage i outputs 4 * dims[i] channels. 4 stages (strides 32..4) or 5
      (32..2).
    num_blocks: residual blocks per stage.
    block_types: 'axial' or 'bottleneck' per stage.
    activation: activation name (see kmax_tf.layers.activations).
    drop_path_keep_prob: keep probability (0, 1] of every block's residual
      branch in training; 1.0 disables drop path.
    norm_epsilon: epsilon of the layer norms applied to the encoder features.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               dims: Sequence[int] = _PRESETS[4][0],
               num_blocks: Sequence[int] = _PRESETS[4][1],
               block_types: Sequence[str] = _PRESETS[4][2],
               activation: str = "gelu",
               drop_path_keep_prob: float = 1.0,
               norm_epsilon: float = 1e-6,
               **kwargs):
    super().__init__(**kwargs)
    dims, num_blocks = tuple(int(d) for d in dims), tuple(int(n) for n in num_blocks)
    block_types = tuple(str(t).lower() for t in block_types)
    if not len(dims) == len(num_blocks) == len(block_types):
      raise ValueError(f"{self.name}: dims, num_blocks and block_types need one entry per "
                       f"stage, got {dims}, {num_blocks}, {block_types}.")
    if len(dims) not in (4, 5):
      raise ValueError(f"{self.name}: 4 stages (strides 32..4) or 5 (32..2), got {len(dims)}.")
    unknown = set(block_types) - {AXIAL, BOTTLENECK}
    if unknown:
      raise ValueError(f"{self.name}: unknown block types {sorted(unknown)}.")
    self.dims = dims
    self.num_blocks = num_blocks
    self.block_types = block_types
    self.activation = activation
    self.drop_path_keep_prob = float(drop_path_keep_prob)
    self.norm_epsilon = float(norm_epsilon)
    self.num_stages = len(dims)

    self.backbone_norms = [
        tf_keras.layers.LayerNormalization(epsilon=self.norm_epsilon, name=f"backbone_norm_{i}")
        for i in range(self.num_stages)]
    self.stages = [self._make_stage(i) for i in range(self.num_stages)]
    self.skip_connections = []

  @classmethod
  def from_output_stride(cls, high_resolution_output_stride: int, **kwargs):
    """DeepLab2's decoder for output stride 4 (COCO) or 2 (Cityscapes).

    Args:
      high_resolution_output_stride: stride of `decoder_output` relative to the
        input image, 4 or 2.
      **kwargs: further constructor arguments (activation, drop path, ...).
    """
    if high_resolution_output_stride not in _PRESETS:
      raise ValueError(f"high_resolution_output_stride must be one of {sorted(_PRESETS)}, "
                       f"got {high_resolution_output_stride}.")
    dims, num_blocks, block_types = _PRESETS[high_resolution_output_stride]
    return cls(dims=dims, num_blocks=num_blocks, block_types=block_types, **kwargs)

  @property
  def output_stride(self) -> int:
    return 32 // 2 ** (self.num_stages - 1)

  @property
  def endpoint_names(self) -> Tuple[str, ...]:
    """Names of the endpoints this decoder adds, from stride 32 to the finest."""
    return tuple(f"decoder_stage{i + 1}" for i in range(self.num_stages - 1)) + (
        "decoder_output",)

  def _make_stage(self, index):
    return block_group.BlockGroup(
        filters=self.dims[index],
        num_blocks=self.num_blocks[index],
        block_type=self.block_types[index],
        dilation_rate=_DECODER_ATROUS_RATE,
        activation=self.activation,
        drop_path_keep_prob=self.drop_path_keep_prob,
        name=f"stage_{index}")

  def build(self, input_shape):
    # The fusers resize to the static size of the next encoder feature, as in
    # DeepLab2, and pick their projection kind from the static shapes.
    self.skip_connections = []
    for i in range(self.num_stages - 1):
      shape = tf.TensorShape(input_shape[encoder_endpoint(i + 1)])
      self.skip_connections.append(resized_fuse.ResizedFuse(
          height=shape[1], width=shape[2], num_channels=self.dims[i + 1],
          activation=self.activation, name=f"skip_connection_{i}"))
    super().build(input_shape)

  def call(self, endpoints, training=None):
    endpoints = dict(endpoints)
    x = self.backbone_norms[0](endpoints[encoder_endpoint(0)])
    for i in range(self.num_stages - 1):
      x = self.stages[i](x, training=training)
      endpoints[f"decoder_stage{i + 1}"] = x
      skip = self.backbone_norms[i + 1](endpoints[encoder_endpoint(i + 1)])
      x = self.skip_connections[i]([x, skip], training=training)
    endpoints["decoder_output"] = self.stages[-1](x, training=training)
    return endpoints

  def get_config(self):
    config = super().get_config()
    config.update(
        dims=list(self.dims), num_blocks=list(self.num_blocks),
        block_types=list(self.block_types), activation=self.activation,
        drop_path_keep_prob=self.drop_path_keep_prob, norm_epsilon=self.norm_epsilon)
    return config
