"""DeepLab2 checkpoint keys of the ConvNeXt pixel encoder.

Maps kmax_tf's `ConvNeXt` (Liu et al., CVPR 2022; the kMaX-DeepLab encoder of
Yu et al., ECCV 2022) onto DeepLab2's model-only checkpoint layout under
'encoder/'. DeepLab2 holds the stem and downsampling layers in
`downsample_layers/<i>` and the blocks in `stages/<s>`, each a Keras Sequential,
whose checkpoint children are numbered `layer_with_weights-<k>` counting only
layers that own weights (the zero-padding layers are skipped):
  stem:          conv (k=0), LayerNorm (k=1)
  downsampling:  LayerNorm (k=0), conv (k=1)
  stage blocks:  block j -> k=j, with named children depthwise_conv, norm,
                 pointwise_conv1, pointwise_conv2 and the weight layer_scale.
"""
from typing import Dict

import tensorflow as tf

_CONV_WEIGHTS = ("kernel", "bias")
_NORM_WEIGHTS = ("gamma", "beta")


def _add(mapping, key, variable):
  if key in mapping:
    raise ValueError(f"duplicate checkpoint key {key}")
  mapping[key] = variable


def _add_layer(mapping, prefix, layer, weight_names):
  for name in weight_names:
    _add(mapping, f"{prefix}/{name}", getattr(layer, name))


def _block_map(mapping, prefix, block):
  _add_layer(mapping, f"{prefix}/depthwise_conv", block.depthwise_conv, _CONV_WEIGHTS)
  _add_layer(mapping, f"{prefix}/norm", block.norm, _NORM_WEIGHTS)
  _add_layer(mapping, f"{prefix}/pointwise_conv1", block.pointwise_conv1, _CONV_WEIGHTS)
  _add_layer(mapping, f"{prefix}/pointwise_conv2", block.pointwise_conv2, _CONV_WEIGHTS)
  if block.layer_scale is not None:
    _add(mapping, f"{prefix}/layer_scale", block.layer_scale)


def deeplab2_variable_map(encoder) -> Dict[str, tf.Variable]:
  """Returns {DeepLab2 key relative to 'encoder/': variable} for a built ConvNeXt."""
  if not encoder.built:
    raise ValueError("Build the ConvNeXt (call it once) before mapping its variables.")
  mapping = {}
  stem = "downsample_layers/0"
  _add_layer(mapping, f"{stem}/layer_with_weights-0", encoder.stem_conv, _CONV_WEIGHTS)
  _add_layer(mapping, f"{stem}/layer_with_weights-1", encoder.stem_norm, _NORM_WEIGHTS)
  for i, (norm, conv) in enumerate(zip(encoder.downsample_norms, encoder.downsample_convs), 1):
    _add_layer(mapping, f"downsample_layers/{i}/layer_with_weights-0", norm, _NORM_WEIGHTS)
    _add_layer(mapping, f"downsample_layers/{i}/layer_with_weights-1", conv, _CONV_WEIGHTS)
  for s, blocks in enumerate(encoder.stages):
    for j, block in enumerate(blocks):
      _block_map(mapping, f"stages/{s}/layer_with_weights-{j}", block)

  mapped = {v.ref() for v in mapping.values()}
  unmapped = [v.name for v in encoder.weights if v.ref() not in mapped]
  if unmapped or len(mapped) != len(mapping):
    raise ValueError(f"ConvNeXt variable map incomplete: unmapped {unmapped}")
  return mapping
