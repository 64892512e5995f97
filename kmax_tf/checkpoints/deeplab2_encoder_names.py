"""DeepLab2 checkpoint keys of the (axial-)ResNet-50 pixel encoders.

Maps kmax_tf's `AxialResNet` (ResNet-50 / axial-ResNet-50 of kMaX-DeepLab, Yu
et al., ECCV 2022) onto DeepLab2's model-only checkpoint layout under
'encoder/'. DeepLab2 checkpoint objects are its Python attribute names
(leading underscore):
  _stem/_conv, _stem/_batch_norm                       ('resnet' stem)
  _stem/_conv1_bn_act, _conv2_bn_act, _conv3_bn        ('resnet_beta' stem)
  _stage{2..5}/_block{j}/...                           (BlockGroup blocks)
with Conv2DSame children `_conv/kernel` and `_batch_norm/{gamma, beta,
moving_mean, moving_variance}`; bottleneck blocks hold `_conv1_bn_act`,
`_conv2_bn_act`, `_conv3_bn`, optional `_shortcut`; axial blocks hold
`_conv1_bn_act`, `_attention/_{height,width}_axis/...`, `_conv3_bn`, optional
`_shortcut`. The block-group helpers here also serve the pixel decoder, whose
BlockGroups use the same layout.
"""
from typing import Dict

import tensorflow as tf

from kmax_tf.layers import axial_block
from kmax_tf.layers import bottleneck_block
from kmax_tf.pixel_encoders import resnet_stem

_BN_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")


def _add(mapping, key, variable):
  if key in mapping:
    raise ValueError(f"duplicate checkpoint key {key}")
  mapping[key] = variable


def batch_norm_variable_map(prefix: str, bn) -> Dict[str, tf.Variable]:
  return {f"{prefix}/{w}": getattr(bn, w) for w in _BN_WEIGHTS}


def conv_bn_act_variable_map(prefix: str, layer) -> Dict[str, tf.Variable]:
  """Keys of a DeepLab2 Conv2DSame (`prefix/_conv/...`, `prefix/_batch_norm/...`)."""
  mapping = {f"{prefix}/_conv/kernel": layer.conv.kernel}
  if layer.use_bias:
    mapping[f"{prefix}/_conv/bias"] = layer.conv.bias
  if layer.batch_norm is not None:
    mapping.update(batch_norm_variable_map(f"{prefix}/_batch_norm", layer.batch_norm))
  return mapping


def axial_attention_variable_map(prefix: str, attention) -> Dict[str, tf.Variable]:
  """Keys of one DeepLab2 AxialAttention (one axis)."""
  mapping = {
      f"{prefix}/qkv_kernel": attention.qkv_kernel,
      f"{prefix}/_query_rpe/embeddings": attention.query_rpe_embeddings,
      f"{prefix}/_key_rpe/embeddings": attention.key_rpe_embeddings,
      f"{prefix}/_value_rpe/embeddings": attention.value_rpe_embeddings,
  }
  for name in ("batch_norm_qkv", "batch_norm_similarity", "batch_norm_retrieved_output"):
    mapping.update(batch_norm_variable_map(f"{prefix}/_{name}", getattr(attention, name)))
  return mapping


def block_variable_map(prefix: str, block) -> Dict[str, tf.Variable]:
  """Keys of a BottleneckBlock or AxialBlock as DeepLab2's AxialBlock."""
  mapping = conv_bn_act_variable_map(f"{prefix}/_conv1_bn_act", block.conv1_bn_act)
  if isinstance(block, bottleneck_block.BottleneckBlock):
    mapping.update(conv_bn_act_variable_map(f"{prefix}/_conv2_bn_act", block.conv2_bn_act))
  elif isinstance(block, axial_block.AxialBlock):
    for axis in ("height_axis", "width_axis"):
      mapping.update(axial_attention_variable_map(
          f"{prefix}/_attention/_{axis}", getattr(block.attention, axis)))
  else:
    raise TypeError(f"{prefix}: unexpected block type {type(block).__name__}")
  mapping.update(conv_bn_act_variable_map(f"{prefix}/_conv3_bn", block.conv3_bn))
  if block.shortcut is not None:
    mapping.update(conv_bn_act_variable_map(f"{prefix}/_shortcut", block.shortcut))
  return mapping


def block_group_variable_map(prefix: str, group) -> Dict[str, tf.Variable]:
  """Keys of a built BlockGroup: `prefix/_block{j}/...`."""
  mapping = {}
  for j, block in enumerate(group.blocks, 1):
    for key, variable in block_variable_map(f"{prefix}/_block{j}", block).items():
      _add(mapping, key, variable)
  return mapping


def deeplab2_variable_map(encoder) -> Dict[str, tf.Variable]:
  """Returns {DeepLab2 key relative to 'encoder/': variable} for a built AxialResNet."""
  if not encoder.built:
    raise ValueError("Build the encoder (call it once) before mapping its variables.")
  stem = encoder.stem
  if isinstance(stem, resnet_stem.ResNetStem):
    mapping = conv_bn_act_variable_map("_stem", stem.conv_bn)
  else:
    mapping = {}
    for name in ("conv1_bn_act", "conv2_bn_act", "conv3_bn"):
      mapping.update(conv_bn_act_variable_map(f"_stem/_{name}", getattr(stem, name)))
  for k, group in enumerate(encoder.stages):
    for key, variable in block_group_variable_map(f"_stage{k + 2}", group).items():
      _add(mapping, key, variable)

  mapped = {v.ref() for v in mapping.values()}
  unmapped = [v.name for v in encoder.weights if v.ref() not in mapped]
  if unmapped or len(mapped) != len(mapping):
    raise ValueError(f"Encoder variable map incomplete: unmapped {unmapped}")
  return mapping
