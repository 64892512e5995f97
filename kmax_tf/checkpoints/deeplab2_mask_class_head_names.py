"""DeepLab2 checkpoint keys of the mask/class prediction head.

Maps kmax_tf's `MaskClassHead` (the MaX-DeepLab head of Wang et al., CVPR 2021,
as used by kMaX-DeepLab, Yu et al., ECCV 2022) onto DeepLab2's model-only
checkpoint layout. DeepLab2's final predictor contributes five top-level
checkpoint items:
  pixel_space_head/conv_block/_conv1_bn_act/{_depthwise,_pointwise}/...,
  pixel_space_head/final_conv/{kernel,bias}
  transformer_mask_head/_conv/kernel, transformer_mask_head/_batch_norm/...
  transformer_class_head/_conv/{kernel,bias}
  pixel_space_feature_batch_norm/..., pixel_space_mask_batch_norm/...
The auxiliary predictor inside each kMaX decoder layer is the same head stored
as an attribute object, so there the five names carry a leading underscore
(`_pixel_space_head/...`, ...); see `auxiliary_predictor_variable_map`.

Also provides the building blocks the other kMaX heads' maps reuse
(`add_conv_bn_act`, `panoptic_single_head_variable_map`).
"""
from typing import Dict

import tensorflow as tf

BN_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")


def add(mapping, key, variable):
  if key in mapping:
    raise ValueError(f"duplicate checkpoint key {key}")
  mapping[key] = variable


def add_batch_norm(mapping, prefix, bn):
  for name in BN_WEIGHTS:
    add(mapping, f"{prefix}/{name}", getattr(bn, name))


def add_conv_bn_act(mapping, prefix, layer):
  """A ConvBNAct / Conv1DBNAct as DeepLab2's Conv2DSame, DepthwiseConv2DSame or Conv1D."""
  if getattr(layer, "depthwise", False):
    add(mapping, f"{prefix}/_depthwise_conv/depthwise_kernel", layer.conv.depthwise_kernel)
  else:
    add(mapping, f"{prefix}/_conv/kernel", layer.conv.kernel)
  if layer.use_bias:
    add(mapping, f"{prefix}/_conv/bias", layer.conv.bias)
  if layer.batch_norm is not None:
    add_batch_norm(mapping, f"{prefix}/_batch_norm", layer.batch_norm)


def panoptic_single_head_variable_map(head, conv_block_prefix, final_conv_prefix):
  """Keys of a PanopticSingleHead, whose conv block DeepLab2 stores as one
  StackedConv2DSame (`<conv_block_prefix>/_conv1_bn_act/...`) and whose final
  1x1 conv is a plain Conv2D (`<final_conv_prefix>/{kernel,bias}`)."""
  mapping = {}
  block = f"{conv_block_prefix}/_conv1_bn_act"
  if head.conv_type == "depthwise_separable_conv":
    depthwise, pointwise = head.conv_block
    add_conv_bn_act(mapping, f"{block}/_depthwise", depthwise)
    add_conv_bn_act(mapping, f"{block}/_pointwise", pointwise)
  else:
    (conv,) = head.conv_block
    add_conv_bn_act(mapping, block, conv)
  add(mapping, f"{final_conv_prefix}/kernel", head.final_conv.kernel)
  add(mapping, f"{final_conv_prefix}/bias", head.final_conv.bias)
  return mapping


def check_complete(layer, mapping, what):
  """Raises unless `mapping` covers every variable of `layer` exactly once."""
  mapped = {v.ref() for v in mapping.values()}
  unmapped = [v.name for v in layer.weights if v.ref() not in mapped]
  if unmapped or len(mapped) != len(mapping) or len(mapped) != len(layer.weights):
    raise ValueError(f"{what} variable map incomplete: unmapped {unmapped}")


def _head_map(head, attribute_prefix):
  if not head.built:
    raise ValueError("Build the MaskClassHead (call it once) before mapping its variables.")
  p = attribute_prefix
  mapping = panoptic_single_head_variable_map(
      head.pixel_space_head, f"{p}pixel_space_head/conv_block", f"{p}pixel_space_head/final_conv")
  add_conv_bn_act(mapping, f"{p}transformer_mask_head", head.transformer_mask_head)
  add_conv_bn_act(mapping, f"{p}transformer_class_head", head.transformer_class_head)
  add_batch_norm(mapping, f"{p}pixel_space_feature_batch_norm",
                 head.pixel_space_feature_batch_norm)
  add_batch_norm(mapping, f"{p}pixel_space_mask_batch_norm", head.pixel_space_mask_batch_norm)
  check_complete(head, mapping, "MaskClassHead")
  return mapping


def deeplab2_variable_map(head) -> Dict[str, tf.Variable]:
  """{top-level DeepLab2 checkpoint key: variable} for the final predictor's head.

  Keys are the model-only checkpoint keys without the
  '/.ATTRIBUTES/VARIABLE_VALUE' suffix, e.g. 'pixel_space_head/final_conv/kernel'.
  The auxiliary semantic branch (semantic_decoder, semantic_head_without_last_layer,
  semantic_last_layer) is not part of this head.
  """
  return _head_map(head, "")


def auxiliary_predictor_variable_map(head) -> Dict[str, tf.Variable]:
  """Keys of a kMaX layer's auxiliary predictor, relative to
  '<layer>/_auxiliary_clustering_predictor/' (e.g. '_pixel_space_head/final_conv/kernel')."""
  return _head_map(head, "_")
