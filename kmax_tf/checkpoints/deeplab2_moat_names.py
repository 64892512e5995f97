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
from kmax_tf.checkpoints import variable_map as vm
from kmax_tf.layers import moat_block

_CONV = vm.CONV_WEIGHTS
_BN = vm.BN_WEIGHTS
_BN_STATISTICS = ("moving_mean", "moving_variance")
_LN = vm.LN_WEIGHTS
# Our attention weight -> DeepLab2's (TrailDense object, weight name).
_ATTENTION = {
    "query_kernel": ("q", "weight"), "query_bias": ("q", "bias"),
    "key_kernel": ("k", "weight"), "key_bias": ("k", "bias"),
    "value_kernel": ("v", "weight"), "value_bias": ("v", "bias"),
    "output_kernel": ("o", "weight"), "output_bias": ("o", "bias"),
}
# Keras layer names of DeepLab2's SE -> its Python attribute names.
_SE_ATTRIBUTES = {"reduce_conv2d": "se_reduce", "expand_conv2d": "se_expand"}


def _mbconv_layers(block):
  """(DeepLab2 Keras layer path, our layer, weight names) of a block's MBConv part."""
  mb = block.mbconv if isinstance(block, moat_block.MOATBlock) else block
  layers = [("pre_norm", mb.pre_norm, _BN), ("expand_conv", mb.expand_conv, ("kernel",)),
            ("expand_norm", mb.expand_norm, _BN),
            ("depthwise_conv", mb.depthwise_conv, ("depthwise_kernel",)),
            ("depthwise_norm", mb.depthwise_norm, _BN), ("shrink_conv", mb.shrink_conv, _CONV)]
  if mb.shortcut_conv is not None:
    layers.append(("shortcut_conv", mb.shortcut_conv, _CONV))
  if mb.se is not None:
    layers += [("se/reduce_conv2d", mb.se.reduce_conv, _CONV),
               ("se/expand_conv2d", mb.se.expand_conv, _CONV)]
  return layers


def _weights(kmax_prefix, imagenet_prefix, layer, names):
  for name in names:
    imagenet = None if name in _BN_STATISTICS else f"{imagenet_prefix}/{name}"
    yield f"{kmax_prefix}/{name}", imagenet, getattr(layer, name)


def _entries(encoder):
  """(kMaX key, ImageNet name or None if not stored there, variable) of every variable."""
  vm.require_built(encoder, "MOAT")
  k = 0
  for i, conv in enumerate(encoder.stem_convs):
    yield from _weights(f"_stem/layer_with_weights-{k}", f"moat/stem/conv_{i}", conv, _CONV)
    k += 1
    if i < len(encoder.stem_norms):
      yield from _weights(f"_stem/layer_with_weights-{k}", f"moat/stem/norm_{i}",
                          encoder.stem_norms[i], _BN)
      k += 1
  for s, blocks in enumerate(encoder.stages):
    for j, block in enumerate(blocks):
      kmax, imagenet = f"_blocks/{s}/{j}", f"moat/block_{s:02d}_{j:02d}"
      for path, layer, names in _mbconv_layers(block):
        attributes = "/".join("_" + _SE_ATTRIBUTES.get(p, p) for p in path.split("/"))
        yield from _weights(f"{kmax}/{attributes}", f"{imagenet}/{path}", layer, names)
      if isinstance(block, moat_block.MOATBlock):
        yield from _weights(f"{kmax}/_attention_norm", f"{imagenet}/attention_norm",
                            block.attention_norm, _LN)
        attention = block.attention
        for ours, (proj, weight) in _ATTENTION.items():
          yield (f"{kmax}/_attention/_{proj}_proj/{weight}",
                 f"{imagenet}/attention/{proj}/{weight}", getattr(attention, ours))
        if attention.relative_position_embedding is not None:
          yield (f"{kmax}/_attention/relative_position_embedding",
                 f"{imagenet}/attention/relative_position_embedding",
                 attention.relative_position_embedding)


def deeplab2_variable_map(encoder) -> vm.VariableMap:
  """{kMaX-DeepLab checkpoint key relative to 'encoder/': variable} for a built MOAT.

  Args:
    encoder: a MOAT that has been called once (built).
  """
  mapping = {}
  for key, _, variable in _entries(encoder):
    vm.add(mapping, key, variable)
  return vm.check_complete(encoder.weights, mapping, "MOAT")


def imagenet_variable_map(encoder) -> vm.VariableMap:
  """{MOAT ImageNet checkpoint name: variable} of the trainable variables.

  Args:
    encoder: a MOAT that has been called once (built).
  """
  mapping = {}
  for _, name, variable in _entries(encoder):
    if name is not None:
      vm.add(mapping, name, variable)
  return vm.check_complete(encoder.trainable_weights, mapping, "MOAT ImageNet")
