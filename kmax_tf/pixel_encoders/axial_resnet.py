"""(Axial-)ResNet-50 pixel encoders of kMaX-DeepLab, as built by DeepLab2.

ResNet (He et al., CVPR 2016) and Axial-ResNet (Wang et al., Axial-DeepLab,
ECCV 2020; MaX-DeepLab-S backbone, CVPR 2021) with output stride 32, the two
ResNet-family encoders of kMaX-DeepLab. Presets: `resnet50.resnet50()` (7x7 stem,
ReLU, bottlenecks only)
and `axial_resnet50.axial_resnet50()` (inception stem, GELU, axial blocks
wherever the block's input stride is >= 16).

Layout (DeepLab2's, needed for its checkpoints): a stem to stride 2 (no
max-pool), then stages 2..5 with (3, 4, 6, 3) blocks, 64 * 2^k bottleneck
filters and 4x that many output channels, each stage strided by 2 in its
first block. A block counts as beyond stride s when its input stride is >= s;
strides grow only after the first block of a stage, so stage 4's first block
(input stride 8) stays a bottleneck in the axial model while stage 5's first
block (input stride 16) is axial.

Drop path (stochastic depth) follows DeepLab2's 'linear' schedule: blocks whose
input stride t is >= 16 keep their branch with probability
1 - (1 - drop_path_keep_prob) * (log2(t) - 1) / 4, i.e. 1 - 0.75 (1 - p) at
stride 16 and p at stride 32; earlier blocks never drop.

Input: normalized image (image / 127.5 - 1) [B, H, W, 3] with static H, W.
Output endpoints (DeepLab2 names): `stage1`..`stage5` (pre-activation, strides
2, 4, 8, 16, 32), `res1`..`res5` = activation(stageN), `backbone_output` = res5.
"""
import math
from typing import Sequence

import tf_keras

from kmax_tf.layers import activations
from kmax_tf.layers import block_group
from kmax_tf.pixel_encoders import inception_stem
from kmax_tf.pixel_encoders import resnet_stem

STEM_TYPES = ("resnet", "inception")
_BASE_FILTERS = 64
_DROP_PATH_BEYOND_STRIDE = 16
_NUM_DROP_PATH_STAGES = 4


def block_input_strides(stage_input_stride: int, num_blocks: int):
  """Input stride of each block of a stage whose first block has stride 2.

  Args:
    stage_input_stride: stride (relative to the image) of the stage's input.
    num_blocks: blocks in the stage.

  Returns:
    A list of num_blocks strides: the first block's input stride, then twice
    that for the rest.
  """
  return [stage_input_stride] + [2 * stage_input_stride] * (num_blocks - 1)


def drop_path_keep_prob_at(stride: int, drop_path_keep_prob: float) -> float:
  """DeepLab2's linear schedule, evaluated in its float order.

  Args:
    stride: input stride of the block relative to the image (2, 4, ..., 32).
    drop_path_keep_prob: keep probability reached at stride 32.

  Returns:
    The block's keep probability: 1.0 below stride 16, then linear in
    log2(stride) down to drop_path_keep_prob at stride 32.
  """
  if stride < _DROP_PATH_BEYOND_STRIDE:
    return 1.0
  stage = int(round(math.log2(stride) - 1))
  return 1.0 - (1.0 - drop_path_keep_prob) * stage / _NUM_DROP_PATH_STAGES


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class AxialResNet(tf_keras.layers.Layer):
  """ResNet-50-shaped encoder returning DeepLab2's endpoint dict.

  Sub-layers (the checkpoint importer relies on them): `stem` (ResNetStem or
  InceptionStem) and `stages[k]` (BlockGroup for DeepLab2's `_stage{k + 2}`).

  Args:
    stem_type: 'resnet' (one 7x7 conv) or 'inception' (three 3x3 convs).
    use_axial_beyond_stride: blocks whose input stride is >= this are axial
      blocks; 0 builds bottleneck blocks only.
    activation: activation name (see kmax_tf.layers.activations).
    num_blocks: blocks in stages 2..5 (four counts).
    drop_path_keep_prob: keep probability of the stride-32 blocks; see the
      module docstring for the schedule. 1.0 disables drop path.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               stem_type: str = "resnet",
               use_axial_beyond_stride: int = 0,
               activation: str = "relu",
               num_blocks: Sequence[int] = (3, 4, 6, 3),
               drop_path_keep_prob: float = 1.0,
               **kwargs):
    super().__init__(**kwargs)
    if stem_type not in STEM_TYPES:
      raise ValueError(f"{self.name}: stem_type {stem_type!r} not in {STEM_TYPES}.")
    if len(num_blocks) != 4:
      raise ValueError(f"{self.name}: num_blocks needs 4 stages, got {num_blocks}.")
    self.stem_type = stem_type
    self.use_axial_beyond_stride = use_axial_beyond_stride
    self.activation = activation
    self.num_blocks = tuple(int(n) for n in num_blocks)
    self.drop_path_keep_prob = float(drop_path_keep_prob)
    self._activation_fn = activations.get_activation(activation)

    if stem_type == "resnet":
      self.stem = resnet_stem.ResNetStem(_BASE_FILTERS, name="stem")
    else:
      self.stem = inception_stem.InceptionStem(_BASE_FILTERS, activation=activation, name="stem")

    self.stages = []
    for k, n in enumerate(self.num_blocks):
      strides = block_input_strides(2 ** (k + 1), n)
      use_axial = [0 < use_axial_beyond_stride <= s for s in strides]
      self.stages.append(block_group.BlockGroup(
          filters=_BASE_FILTERS * 2**k,
          num_blocks=n,
          block_type=["axial" if a else "bottleneck" for a in use_axial],
          strides=2,
          activation=activation,
          drop_path_keep_prob=[drop_path_keep_prob_at(s, self.drop_path_keep_prob)
                               for s in strides],
          name=f"stage{k + 2}"))

  def call(self, inputs, training=None):
    x = self.stem(inputs, training=training)
    endpoints = {"stage1": x, "res1": self._activation_fn(x)}
    for k, stage in enumerate(self.stages):
      x = stage(x, training=training)
      endpoints[f"stage{k + 2}"] = x
      endpoints[f"res{k + 2}"] = self._activation_fn(x)
    endpoints["backbone_output"] = endpoints["res5"]
    return endpoints

  def get_config(self):
    config = super().get_config()
    config.update(
        stem_type=self.stem_type, use_axial_beyond_stride=self.use_axial_beyond_stride,
        activation=self.activation, num_blocks=self.num_blocks,
        drop_path_keep_prob=self.drop_path_keep_prob)
    return config
