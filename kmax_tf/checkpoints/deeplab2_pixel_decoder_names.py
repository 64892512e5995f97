"""DeepLab2 checkpoint keys of the kMaX-DeepLab pixel decoder.

Maps kmax_tf's `KMaXPixelDecoder` (Yu et al., "k-means Mask Transformer",
ECCV 2022) onto DeepLab2's model-only checkpoint layout under 'pixel_decoder/':

  _backbone_norms/<i>/{gamma,beta}              LayerNormalization of stage i's input
  _stages/<i>/_block<j>/...                      BlockGroup i (same block layout as
                                                 the encoders, see deeplab2_encoder_names)
  _skip_connections/<i>/_<kind>_conv_bn<k>/...   ResizedFuse i: projection of its k-th
                                                 input (1-based), kind 'resized' or
                                                 'strided'; inputs that need no
                                                 projection have no variables
"""
from typing import Dict

import tensorflow as tf

from kmax_tf.checkpoints import deeplab2_encoder_names

_LN_WEIGHTS = ("gamma", "beta")


def _add(mapping, key, variable):
  if key in mapping:
    raise ValueError(f"duplicate checkpoint key {key}")
  mapping[key] = variable


def resized_fuse_variable_map(prefix: str, fuse) -> Dict[str, tf.Variable]:
  """Keys of a built ResizedFuse: `prefix/_<kind>_conv_bn<k>/...`."""
  mapping = {}
  for k, (kind, projection) in enumerate(zip(fuse.projection_kinds, fuse.projections), 1):
    if projection is not None:
      mapping.update(deeplab2_encoder_names.conv_bn_act_variable_map(
          f"{prefix}/_{kind}_conv_bn{k}", projection))
  return mapping


def deeplab2_variable_map(pixel_decoder) -> Dict[str, tf.Variable]:
  """Returns {DeepLab2 key relative to 'pixel_decoder/': variable} for a built decoder."""
  if not pixel_decoder.built:
    raise ValueError("Build the KMaXPixelDecoder (call it once) before mapping its variables.")
  mapping = {}
  for i, norm in enumerate(pixel_decoder.backbone_norms):
    for name in _LN_WEIGHTS:
      _add(mapping, f"_backbone_norms/{i}/{name}", getattr(norm, name))
  parts = [deeplab2_encoder_names.block_group_variable_map(f"_stages/{i}", stage)
           for i, stage in enumerate(pixel_decoder.stages)]
  parts += [resized_fuse_variable_map(f"_skip_connections/{i}", fuse)
            for i, fuse in enumerate(pixel_decoder.skip_connections)]
  for part in parts:
    for key, variable in part.items():
      _add(mapping, key, variable)

  mapped = {v.ref() for v in mapping.values()}
  unmapped = [v.name for v in pixel_decoder.weights if v.ref() not in mapped]
  if unmapped or len(mapped) != len(mapping):
    raise ValueError(f"Pixel decoder variable map incomplete: unmapped {unmapped}")
  return mapping
