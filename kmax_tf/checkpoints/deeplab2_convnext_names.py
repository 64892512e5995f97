"""DeepLab2 checkpoint keys of the ConvNeXt pixel encoder.

Maps kmax_tf's `ConvNeXt` (Liu et al., CVPR 2022; a kMaX-DeepLab encoder) onto
DeepLab2's model-only checkpoint layout under
'encoder/'. DeepLab2 holds the stem and downsampling layers in
`downsample_layers/<i>` and the blocks in `stages/<s>`, each a Keras Sequential,
whose checkpoint children are numbered `layer_with_weights-<k>` counting only
layers that own weights (the zero-padding layers are skipped):
  stem:          conv (k=0), LayerNorm (k=1)
  downsampling:  LayerNorm (k=0), conv (k=1)
  stage blocks:  block j -> k=j, with named children depthwise_conv, norm,
                 pointwise_conv1, pointwise_conv2 and the weight layer_scale.
"""
from kmax_tf.checkpoints import variable_map as vm


def _block_map(mapping, prefix, block):
  vm.add_weights(mapping, f"{prefix}/depthwise_conv", block.depthwise_conv, vm.CONV_WEIGHTS)
  vm.add_weights(mapping, f"{prefix}/norm", block.norm, vm.LN_WEIGHTS)
  vm.add_weights(mapping, f"{prefix}/pointwise_conv1", block.pointwise_conv1, vm.CONV_WEIGHTS)
  vm.add_weights(mapping, f"{prefix}/pointwise_conv2", block.pointwise_conv2, vm.CONV_WEIGHTS)
  if block.layer_scale is not None:
    vm.add(mapping, f"{prefix}/layer_scale", block.layer_scale)


def deeplab2_variable_map(encoder) -> vm.VariableMap:
  """Returns {DeepLab2 key relative to 'encoder/': variable} for a built ConvNeXt.

  Args:
    encoder: a ConvNeXt that has been called once (built).
  """
  vm.require_built(encoder, "ConvNeXt")
  mapping = {}
  stem = "downsample_layers/0"
  vm.add_weights(mapping, f"{stem}/layer_with_weights-0", encoder.stem_conv, vm.CONV_WEIGHTS)
  vm.add_weights(mapping, f"{stem}/layer_with_weights-1", encoder.stem_norm, vm.LN_WEIGHTS)
  for i, (norm, conv) in enumerate(zip(encoder.downsample_norms, encoder.downsample_convs), 1):
    vm.add_weights(mapping, f"downsample_layers/{i}/layer_with_weights-0", norm, vm.LN_WEIGHTS)
    vm.add_weights(mapping, f"downsample_layers/{i}/layer_with_weights-1", conv,
                   vm.CONV_WEIGHTS)
  for s, blocks in enumerate(encoder.stages):
    for j, block in enumerate(blocks):
      _block_map(mapping, f"stages/{s}/layer_with_weights-{j}", block)
  return vm.check_complete(encoder.weights, mapping, "ConvNeXt")
