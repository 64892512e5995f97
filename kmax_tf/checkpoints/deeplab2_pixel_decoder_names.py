"""DeepLab2 checkpoint keys of the kMaX-DeepLab pixel decoder.

Maps kmax_tf's `KMaXPixelDecoder` onto DeepLab2's model-only checkpoint layout under
'pixel_decoder/':

  _backbone_norms/<i>/{gamma,beta}              LayerNormalization of stage i's input
  _stages/<i>/_block<j>/...                      BlockGroup i (same block layout as
                                                 the encoders, see deeplab2_encoder_names)
  _skip_connections/<i>/_<kind>_conv_bn<k>/...   ResizedFuse i: projection of its k-th
                                                 input (1-based), kind 'resized' or
                                                 'strided'; inputs that need no
                                                 projection have no variables
"""
from kmax_tf.checkpoints import deeplab2_encoder_names
from kmax_tf.checkpoints import variable_map as vm


def deeplab2_variable_map(pixel_decoder) -> vm.VariableMap:
  """Returns {DeepLab2 key relative to 'pixel_decoder/': variable} for a built decoder.

  Args:
    pixel_decoder: a KMaXPixelDecoder that has been called once (built).
  """
  vm.require_built(pixel_decoder, "KMaXPixelDecoder")
  mapping = {}
  for i, norm in enumerate(pixel_decoder.backbone_norms):
    vm.add_weights(mapping, f"_backbone_norms/{i}", norm, vm.LN_WEIGHTS)
  for i, stage in enumerate(pixel_decoder.stages):
    vm.add_all(mapping, deeplab2_encoder_names.block_group_variable_map(f"_stages/{i}", stage))
  for i, fuse in enumerate(pixel_decoder.skip_connections):
    # ResizedFuse: `_<kind>_conv_bn<k>` per projected input.
    for k, (kind, projection) in enumerate(zip(fuse.projection_kinds, fuse.projections), 1):
      if projection is not None:
        vm.add_conv_bn_act(mapping, f"_skip_connections/{i}/_{kind}_conv_bn{k}", projection)
  return vm.check_complete(pixel_decoder.weights, mapping, "Pixel decoder")
