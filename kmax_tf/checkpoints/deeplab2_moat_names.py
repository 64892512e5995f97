"""DeepLab2 checkpoint keys of the MOAT pixel encoder.

Maps kmax_tf's `MOAT` (Yang et al., ICLR 2023; a kMaX-DeepLab encoder in
DeepLab2) onto two DeepLab2 layouts:

* kMaX-DeepLab checkpoints (model-only and trainer layouts), keys relative to
  'encoder/': the stem is a Keras Sequential, `_stem/layer_with_weights-<k>`
  counting only layers with weights (conv_0, norm_0, conv_1, ...); blocks are
  `_blocks/<stage>/<block>/` with DeepLab2's attribute names `_pre_norm`,
  `_expand_conv`, `_expand_norm`, `_depthwise_conv`, `_depthwise_norm`,
  `_se/_se_reduce`, `_se/_se_expand`, `_shrink_conv`, `_shortcut_conv`, and
  for MOAT blocks `_attention_norm` and `_attention/_{q,k,v,o}_proj/{weight,
  bias}` plus `_attention/relative_position_embedding`.
* the MOAT ImageNet checkpoints (name-based, what DeepLab2's
  `moat._load_moat_pretrained_checkpoint` reads): the Keras variable names of
  DeepLab2's MOAT, `moat/block_<SS>_<JJ>/<layer>/<weight>`, with the stem
  under `moat/stem/`. DeepLab2 reads only trainable variables from them (BN
  moving statistics keep their initial values), and so does
  `imagenet_variable_map`.
"""
from typing import Dict

import tensorflow as tf

from kmax_tf.layers import moat_block

_CONV = ("kernel", "bias")
_BN = ("gamma", "beta", "moving_mean", "moving_variance")
_BN_TRAINABLE = ("gamma", "beta")
_LN = ("gamma", "beta")
# Our attention weight -> DeepLab2's (TrailDense object, weight name).
_ATTENTION = {
    "query_kernel": ("q", "weight"), "query_bias": ("q", "bias"),
    "key_kernel": ("k", "weight"), "key_bias": ("k", "bias"),
    "value_kernel": ("v", "weight"), "value_bias": ("v", "bias"),
    "output_kernel": ("o", "weight"), "output_bias": ("o", "bias"),
}


def _add(mapping, key, variable):
  if key in mapping:
    raise ValueError(f"duplicate checkpoint key {key}")
  mapping[key] = variable


def _layer(mapping, prefix, layer, weights):
  for w in weights:
    _add(mapping, f"{prefix}/{w}", getattr(layer, w))


def _mbconv_parts(block):
  """(DeepLab2 layer name, our layer, kind) of the MBConv part of a block."""
  mb = block.mbconv if isinstance(block, moat_block.MOATBlock) else block
  parts = [("pre_norm", mb.pre_norm, "bn"), ("expand_conv", mb.expand_conv, "kernel"),
           ("expand_norm", mb.expand_norm, "bn"),
           ("depthwise_conv", mb.depthwise_conv, "depthwise"),
           ("depthwise_norm", mb.depthwise_norm, "bn"), ("shrink_conv", mb.shrink_conv, "conv")]
  if mb.shortcut_conv is not None:
    parts.append(("shortcut_conv", mb.shortcut_conv, "conv"))
  if mb.se is not None:
    parts += [("se/reduce_conv2d", mb.se.reduce_conv, "conv"),
              ("se/expand_conv2d", mb.se.expand_conv, "conv")]
  return parts


_WEIGHTS = {"bn": _BN, "kernel": ("kernel",), "depthwise": ("depthwise_kernel",), "conv": _CONV}
_TRAINABLE_WEIGHTS = dict(_WEIGHTS, bn=_BN_TRAINABLE)


def _check_complete(encoder, mapping, trainable_only):
  wanted = encoder.trainable_weights if trainable_only else encoder.weights
  mapped = {v.ref() for v in mapping.values()}
  unmapped = [v.name for v in wanted if v.ref() not in mapped]
  if unmapped or len(mapped) != len(mapping):
    raise ValueError(f"MOAT variable map incomplete: unmapped {unmapped}")


def deeplab2_variable_map(encoder) -> Dict[str, tf.Variable]:
  """{kMaX-DeepLab checkpoint key relative to 'encoder/': variable} for a built MOAT."""
  if not encoder.built:
    raise ValueError("Build the MOAT (call it once) before mapping its variables.")
  mapping = {}
  k = 0
  for i, conv in enumerate(encoder.stem_convs):
    _layer(mapping, f"_stem/layer_with_weights-{k}", conv, _CONV)
    k += 1
    if i < len(encoder.stem_norms):
      _layer(mapping, f"_stem/layer_with_weights-{k}", encoder.stem_norms[i], _BN)
      k += 1
  for s, blocks in enumerate(encoder.stages):
    for j, block in enumerate(blocks):
      prefix = f"_blocks/{s}/{j}"
      for name, layer, kind in _mbconv_parts(block):
        dl2 = "/".join("_" + p.replace("reduce_conv2d", "se_reduce").replace(
            "expand_conv2d", "se_expand") for p in name.split("/"))
        _layer(mapping, f"{prefix}/{dl2}", layer, _WEIGHTS[kind])
      if isinstance(block, moat_block.MOATBlock):
        _layer(mapping, f"{prefix}/_attention_norm", block.attention_norm, _LN)
        attention = block.attention
        for ours, (proj, weight) in _ATTENTION.items():
          _add(mapping, f"{prefix}/_attention/_{proj}_proj/{weight}", getattr(attention, ours))
        if attention.relative_position_embedding is not None:
          _add(mapping, f"{prefix}/_attention/relative_position_embedding",
               attention.relative_position_embedding)
  _check_complete(encoder, mapping, trainable_only=False)
  return mapping


def imagenet_variable_map(encoder) -> Dict[str, tf.Variable]:
  """{MOAT ImageNet checkpoint name: variable} of the trainable variables."""
  if not encoder.built:
    raise ValueError("Build the MOAT (call it once) before mapping its variables.")
  mapping = {}
  for i, conv in enumerate(encoder.stem_convs):
    _layer(mapping, f"moat/stem/conv_{i}", conv, _CONV)
    if i < len(encoder.stem_norms):
      _layer(mapping, f"moat/stem/norm_{i}", encoder.stem_norms[i], _BN_TRAINABLE)
  for s, blocks in enumerate(encoder.stages):
    for j, block in enumerate(blocks):
      prefix = f"moat/block_{s:02d}_{j:02d}"
      for name, layer, kind in _mbconv_parts(block):
        _layer(mapping, f"{prefix}/{name}", layer, _TRAINABLE_WEIGHTS[kind])
      if isinstance(block, moat_block.MOATBlock):
        _layer(mapping, f"{prefix}/attention_norm", block.attention_norm, _LN)
        attention = block.attention
        for ours, (proj, weight) in _ATTENTION.items():
          _add(mapping, f"{prefix}/attention/{proj}/{weight}", getattr(attention, ours))
        if attention.relative_position_embedding is not None:
          _add(mapping, f"{prefix}/attention/relative_position_embedding",
               attention.relative_position_embedding)
  _check_complete(encoder, mapping, trainable_only=True)
  return mapping
