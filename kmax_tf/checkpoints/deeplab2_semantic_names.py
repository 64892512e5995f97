"""DeepLab2 checkpoint keys of the auxiliary semantic branch.

Maps kmax_tf's `SemanticDecoder` (a Panoptic-DeepLab decoder, Cheng et al.,
CVPR 2020) and the auxiliary semantic `PanopticSingleHead` of kMaX-DeepLab onto
DeepLab2's model-only
checkpoint, where they are three top-level items:
  semantic_decoder/_aspp/{_conv_bn_act,_aspp_conv1..3/_conv_bn_act,
      _aspp_pool/_conv_bn_act,_proj_conv_bn_act}/...
  semantic_decoder/_low_level_conv{i}/..., semantic_decoder/_fusion_conv{i}/_conv1_bn_act/
      {_depthwise,_pointwise}/...   (or .../_conv1_bn_act/_conv/... for standard convs)
  semantic_head_without_last_layer/_conv1_bn_act/...   (the head's conv block)
  semantic_last_layer/{kernel,bias}                     (the head's final 1x1 conv)
"""
from kmax_tf.checkpoints import deeplab2_mask_class_head_names as head_names
from kmax_tf.checkpoints import variable_map as vm

DECODER = "semantic_decoder"
HEAD_WITHOUT_LAST_LAYER = "semantic_head_without_last_layer"
LAST_LAYER = "semantic_last_layer"


def _aspp_map(mapping, prefix, aspp):
  vm.add_conv_bn_act(mapping, f"{prefix}/_proj_conv_bn_act", aspp.proj_conv_bn_act)
  if aspp.use_only_1x1_proj_conv:
    return
  vm.add_conv_bn_act(mapping, f"{prefix}/_conv_bn_act", aspp.conv_bn_act)
  for i, conv in enumerate(aspp.aspp_convs):
    vm.add_conv_bn_act(mapping, f"{prefix}/_aspp_conv{i + 1}/_conv_bn_act", conv)
  vm.add_conv_bn_act(mapping, f"{prefix}/_aspp_pool/_conv_bn_act",
                     aspp.pool_conv_bn_act)


def semantic_decoder_variable_map(decoder) -> vm.VariableMap:
  """Keys relative to the checkpoint root, e.g. 'semantic_decoder/_aspp/...'.

  Args:
    decoder: a built SemanticDecoder.
  """
  vm.require_built(decoder, "SemanticDecoder")
  mapping = {}
  _aspp_map(mapping, f"{DECODER}/_aspp", decoder.aspp)
  for i, (project, fusion) in enumerate(zip(decoder.low_level_convs, decoder.fusion_convs)):
    vm.add_conv_bn_act(mapping, f"{DECODER}/_low_level_conv{i + 1}", project)
    block = f"{DECODER}/_fusion_conv{i + 1}/_conv1_bn_act"
    if decoder.decoder_conv_type == "depthwise_separable_conv":
      depthwise, pointwise = fusion
      vm.add_conv_bn_act(mapping, f"{block}/_depthwise", depthwise)
      vm.add_conv_bn_act(mapping, f"{block}/_pointwise", pointwise)
    else:
      (conv,) = fusion
      vm.add_conv_bn_act(mapping, block, conv)
  return vm.check_complete(decoder.weights, mapping, "SemanticDecoder")


def semantic_head_variable_map(head) -> vm.VariableMap:
  """Keys of the auxiliary semantic PanopticSingleHead, relative to the root.

  Args:
    head: the built semantic PanopticSingleHead.
  """
  vm.require_built(head, "semantic head")
  mapping = head_names.panoptic_single_head_variable_map(
      head, HEAD_WITHOUT_LAST_LAYER, LAST_LAYER)
  return vm.check_complete(head.weights, mapping, "semantic PanopticSingleHead")


def deeplab2_variable_map(semantic_decoder, semantic_head) -> vm.VariableMap:
  """{DeepLab2 model-only checkpoint key (no '/.ATTRIBUTES/VARIABLE_VALUE'): variable}.

  Either argument may be None: Cityscapes kMaX has no auxiliary semantic
  decoder (its semantic head reads the stride-32 feature directly).

  Args:
    semantic_decoder: the built SemanticDecoder, or None.
    semantic_head: the built semantic PanopticSingleHead, or None.
  """
  mapping = {}
  if semantic_decoder is not None:
    mapping.update(semantic_decoder_variable_map(semantic_decoder))
  if semantic_head is not None:
    vm.add_all(mapping, semantic_head_variable_map(semantic_head))
  return mapping
