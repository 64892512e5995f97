"""The whole-model map from DeepLab2 checkpoint keys to kmax_tf variables.

Composes the per-component maps (each built by explicit rules from the layer
structure) under DeepLab2's `checkpoint_items` roots: encoder, pixel_decoder,
transformer_decoder, the prediction-head items and the semantic-branch items.
Every variable of the model must appear exactly once.
"""
from kmax_tf.checkpoints import deeplab2_convnext_names
from kmax_tf.checkpoints import deeplab2_encoder_names
from kmax_tf.checkpoints import deeplab2_mask_class_head_names
from kmax_tf.checkpoints import deeplab2_moat_names
from kmax_tf.checkpoints import deeplab2_pixel_decoder_names
from kmax_tf.checkpoints import deeplab2_transformer_decoder_names
from kmax_tf.checkpoints import variable_map as vm
from kmax_tf.pixel_encoders import convnext
from kmax_tf.pixel_encoders import moat


def model_variable_map(model) -> vm.VariableMap:
  """{DeepLab2 model-only checkpoint key without suffix: variable}.

  Args:
    model: a built KMaXDeepLab (ResNet/axial-ResNet, ConvNeXt or MOAT encoder).
  """
  if isinstance(model.pixel_encoder, convnext.ConvNeXt):
    encoder_map = deeplab2_convnext_names.deeplab2_variable_map(model.pixel_encoder)
  elif isinstance(model.pixel_encoder, moat.MOAT):
    encoder_map = deeplab2_moat_names.deeplab2_variable_map(model.pixel_encoder)
  else:
    encoder_map = deeplab2_encoder_names.deeplab2_variable_map(model.pixel_encoder)
  mapping = {}
  vm.add_all(mapping, encoder_map, prefix="encoder/")
  vm.add_all(mapping, deeplab2_pixel_decoder_names.deeplab2_variable_map(model.pixel_decoder),
             prefix="pixel_decoder/")
  vm.add_all(mapping, deeplab2_transformer_decoder_names.deeplab2_variable_map(
      model.transformer_decoder), prefix="transformer_decoder/")
  vm.add_all(mapping, deeplab2_mask_class_head_names.deeplab2_variable_map(model.mask_class_head))
  if model.semantic_head is not None:
    from kmax_tf.checkpoints import deeplab2_semantic_names  # pylint: disable=g-import-not-at-top
    vm.add_all(mapping, deeplab2_semantic_names.deeplab2_variable_map(
        model.semantic_decoder, model.semantic_head))
  return vm.check_complete(model.variables, mapping, "kMaX-DeepLab")


def imagenet_variable_map(model):
  """{DeepLab2 MOAT ImageNet checkpoint name: variable}, or None if the encoder is not MOAT.

  Args:
    model: a built KMaXDeepLab.
  """
  if isinstance(model.pixel_encoder, moat.MOAT):
    return deeplab2_moat_names.imagenet_variable_map(model.pixel_encoder)
  return None
