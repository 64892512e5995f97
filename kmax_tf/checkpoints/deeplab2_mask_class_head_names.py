"""DeepLab2 checkpoint keys of the mask/class prediction head.

Maps kmax_tf's `MaskClassHead` (the MaX-DeepLab head of Wang et al., CVPR 2021,
as used by kMaX-DeepLab) onto DeepLab2's model-only
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

Also provides `panoptic_single_head_variable_map`, which the semantic head's
map reuses.
"""
from kmax_tf.checkpoints import variable_map as vm


def panoptic_single_head_variable_map(head, conv_block_prefix, final_conv_prefix):
  """Keys of a PanopticSingleHead, whose conv block DeepLab2 stores as one
  StackedConv2DSame (`<conv_block_prefix>/_conv1_bn_act/...`) and whose final
  1x1 conv is a plain Conv2D (`<final_conv_prefix>/{kernel,bias}`).

  Args:
    head: a built PanopticSingleHead.
    conv_block_prefix: DeepLab2 key prefix of its conv block, without a
      trailing '/'.
    final_conv_prefix: DeepLab2 key prefix of its final 1x1 conv.
  """
  mapping = {}
  block = f"{conv_block_prefix}/_conv1_bn_act"
  if head.conv_type == "depthwise_separable_conv":
    depthwise, pointwise = head.conv_block
    vm.add_conv_bn_act(mapping, f"{block}/_depthwise", depthwise)
    vm.add_conv_bn_act(mapping, f"{block}/_pointwise", pointwise)
  else:
    (conv,) = head.conv_block
    vm.add_conv_bn_act(mapping, block, conv)
  vm.add(mapping, f"{final_conv_prefix}/kernel", head.final_conv.kernel)
  vm.add(mapping, f"{final_conv_prefix}/bias", head.final_conv.bias)
  return mapping


def _head_map(head, attribute_prefix):
  vm.require_built(head, "MaskClassHead")
  p = attribute_prefix
  mapping = panoptic_single_head_variable_map(
      head.pixel_space_head, f"{p}pixel_space_head/conv_block", f"{p}pixel_space_head/final_conv")
  vm.add_conv_bn_act(mapping, f"{p}transformer_mask_head", head.transformer_mask_head)
  vm.add_conv_bn_act(mapping, f"{p}transformer_class_head", head.transformer_class_head)
  vm.add_batch_norm(mapping, f"{p}pixel_space_feature_batch_norm",
                    head.pixel_space_feature_batch_norm)
  vm.add_batch_norm(mapping, f"{p}pixel_space_mask_batch_norm", head.pixel_space_mask_batch_norm)
  return vm.check_complete(head.weights, mapping, "MaskClassHead")


def deeplab2_variable_map(head) -> vm.VariableMap:
  """{top-level DeepLab2 checkpoint key: variable} for the final predictor's head.

  Keys are the model-only checkpoint keys without the
  '/.ATTRIBUTES/VARIABLE_VALUE' suffix, e.g. 'pixel_space_head/final_conv/kernel'.

  Args:
    head: the model's MaskClassHead, called once (built).
  The auxiliary semantic branch (semantic_decoder, semantic_head_without_last_layer,
  semantic_last_layer) is not part of this head.
  """
  return _head_map(head, "")


def auxiliary_predictor_variable_map(head) -> vm.VariableMap:
  """Keys of a kMaX layer's auxiliary predictor, relative to
  '<layer>/_auxiliary_clustering_predictor/' (e.g. '_pixel_space_head/final_conv/kernel').

  Args:
    head: a kMaX layer's built MaskClassHead (auxiliary_predictor).
  """
  return _head_map(head, "_")
