"""DeepLab2 checkpoint keys of the (axial-)ResNet-50 pixel encoders.

Maps kmax_tf's `AxialResNet` (ResNet-50 / axial-ResNet-50 of kMaX-DeepLab) onto
DeepLab2's model-only checkpoint layout under
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
from kmax_tf.checkpoints import variable_map as vm
from kmax_tf.layers import axial_block
from kmax_tf.layers import bottleneck_block
from kmax_tf.pixel_encoders import resnet_stem


def _add_axial_attention(mapping, prefix: str, attention) -> None:
  """One DeepLab2 AxialAttention (one axis)."""
  vm.add(mapping, f"{prefix}/qkv_kernel", attention.qkv_kernel)
  vm.add(mapping, f"{prefix}/_query_rpe/embeddings", attention.query_rpe_embeddings)
  vm.add(mapping, f"{prefix}/_key_rpe/embeddings", attention.key_rpe_embeddings)
  vm.add(mapping, f"{prefix}/_value_rpe/embeddings", attention.value_rpe_embeddings)
  for name in ("batch_norm_qkv", "batch_norm_similarity", "batch_norm_retrieved_output"):
    vm.add_batch_norm(mapping, f"{prefix}/_{name}", getattr(attention, name))


def _add_block(mapping, prefix: str, block) -> None:
  """A BottleneckBlock or AxialBlock as DeepLab2's AxialBlock."""
  vm.add_conv_bn_act(mapping, f"{prefix}/_conv1_bn_act", block.conv1_bn_act)
  if isinstance(block, bottleneck_block.BottleneckBlock):
    vm.add_conv_bn_act(mapping, f"{prefix}/_conv2_bn_act", block.conv2_bn_act)
  elif isinstance(block, axial_block.AxialBlock):
    for axis in ("height_axis", "width_axis"):
      _add_axial_attention(mapping, f"{prefix}/_attention/_{axis}",
                           getattr(block.attention, axis))
  else:
    raise TypeError(f"{prefix}: unexpected block type {type(block).__name__}")
  vm.add_conv_bn_act(mapping, f"{prefix}/_conv3_bn", block.conv3_bn)
  if block.shortcut is not None:
    vm.add_conv_bn_act(mapping, f"{prefix}/_shortcut", block.shortcut)


def block_group_variable_map(prefix: str, group) -> vm.VariableMap:
  """Keys of a built BlockGroup: `prefix/_block{j}/...`.

  Args:
    prefix: DeepLab2 key prefix of the group, without a trailing '/'.
    group: a built BlockGroup.
  """
  mapping = {}
  for j, block in enumerate(group.blocks, 1):
    _add_block(mapping, f"{prefix}/_block{j}", block)
  return mapping


def deeplab2_variable_map(encoder) -> vm.VariableMap:
  """Returns {DeepLab2 key relative to 'encoder/': variable} for a built AxialResNet.

  Args:
    encoder: an AxialResNet that has been called once (built).
  """
  vm.require_built(encoder, "encoder")
  stem = encoder.stem
  mapping = {}
  if isinstance(stem, resnet_stem.ResNetStem):
    vm.add_conv_bn_act(mapping, "_stem", stem.conv_bn)
  else:
    for name in ("conv1_bn_act", "conv2_bn_act", "conv3_bn"):
      vm.add_conv_bn_act(mapping, f"_stem/_{name}", getattr(stem, name))
  for k, group in enumerate(encoder.stages):
    vm.add_all(mapping, block_group_variable_map(f"_stage{k + 2}", group))
  return vm.check_complete(encoder.weights, mapping, "Encoder")
