"""DeepLab2 checkpoint keys of the kMaX transformer decoder.

Maps kmax_tf's `KMaXTransformerDecoder` onto DeepLab2's model-only checkpoint layout under
'transformer_decoder/'. DeepLab2 wraps each kMaX layer in a one-block
`BlockGroup` (list `_kmax_decoder`, index = layer order) whose transformer is
`_block1_transformer`, a dual-path transformer layer whose attention parts are
flat attributes of that layer:

  ours                                        DeepLab2 (under _kmax_decoder/<i>/_block1_transformer)
  cluster_projection                          _memory_conv1_bn_act
  pixel_projection                            _pixel_conv1_bn_act
  self_attention.qkv                          _memory_qkv_conv_bn
  self_attention.similarity_batch_norm        _memory_attention/_batch_norm_similarity
  self_attention.retrieved_value_batch_norm   _memory_attention/_batch_norm_retrieved_value
  self_attention.output_projection            _memory_conv3_bn
  kmeans_cross_attention.pixel_value          _pixel_v_conv_bn
  kmeans_cross_attention.retrieved_value_batch_norm
                                              _kmeans_memory_batch_norm_retrieved_value
  kmeans_cross_attention.output_projection    _kmeans_memory_conv3_bn
  ffn_expand / ffn_project                    _memory_ffn_conv1_bn_act / _memory_ffn_conv2_bn
  auxiliary_predictor                         _auxiliary_clustering_predictor/...

plus `_class_embedding_projection`, `_mask_embedding_projection` and
`cluster_centers` at the decoder level.
"""
from kmax_tf.checkpoints import deeplab2_mask_class_head_names as head_names
from kmax_tf.checkpoints import variable_map as vm


def kmax_layer_variable_map(layer) -> vm.VariableMap:
  """{key relative to '_kmax_decoder/<i>/_block1_transformer/': variable} of one
  built KMaXTransformerLayer.

  Args:
    layer: a KMaXTransformerLayer that has been called once (built).
  """
  vm.require_built(layer, "KMaXTransformerLayer")
  mapping = {}
  _layer_map(mapping, "", layer)
  return vm.check_complete(layer.weights, mapping, "KMaXTransformerLayer")


def _layer_map(mapping, prefix, layer):
  """Adds the layer's keys, each prefixed by `prefix` ('' or ending in '/')."""
  add = vm.add_conv_bn_act
  add(mapping, f"{prefix}_memory_conv1_bn_act", layer.cluster_projection)
  add(mapping, f"{prefix}_pixel_conv1_bn_act", layer.pixel_projection)
  attention = layer.self_attention
  add(mapping, f"{prefix}_memory_qkv_conv_bn", attention.qkv)
  vm.add_batch_norm(mapping, f"{prefix}_memory_attention/_batch_norm_similarity",
                    attention.similarity_batch_norm)
  vm.add_batch_norm(mapping, f"{prefix}_memory_attention/_batch_norm_retrieved_value",
                    attention.retrieved_value_batch_norm)
  add(mapping, f"{prefix}_memory_conv3_bn", attention.output_projection)
  kmeans = layer.kmeans_cross_attention
  add(mapping, f"{prefix}_pixel_v_conv_bn", kmeans.pixel_value)
  vm.add_batch_norm(mapping, f"{prefix}_kmeans_memory_batch_norm_retrieved_value",
                    kmeans.retrieved_value_batch_norm)
  add(mapping, f"{prefix}_kmeans_memory_conv3_bn", kmeans.output_projection)
  add(mapping, f"{prefix}_memory_ffn_conv1_bn_act", layer.ffn_expand)
  add(mapping, f"{prefix}_memory_ffn_conv2_bn", layer.ffn_project)
  vm.add_all(mapping, head_names.auxiliary_predictor_variable_map(layer.auxiliary_predictor),
             prefix=f"{prefix}_auxiliary_clustering_predictor/")


def deeplab2_variable_map(decoder) -> vm.VariableMap:
  """Returns {DeepLab2 key relative to 'transformer_decoder/': variable}.

  Keys have no '/.ATTRIBUTES/VARIABLE_VALUE' suffix, e.g.
  '_kmax_decoder/0/_block1_transformer/_memory_conv1_bn_act/_conv/kernel'.

  Args:
    decoder: a KMaXTransformerDecoder that has been called once (built).
  """
  vm.require_built(decoder, "KMaXTransformerDecoder")
  mapping = {}
  for i, layer in enumerate(decoder.kmax_layers):
    _layer_map(mapping, f"_kmax_decoder/{i}/_block1_transformer/", layer)
  vm.add_conv_bn_act(mapping, "_class_embedding_projection",
                     decoder.class_embedding_projection)
  vm.add_conv_bn_act(mapping, "_mask_embedding_projection",
                     decoder.mask_embedding_projection)
  vm.add(mapping, "cluster_centers", decoder.cluster_centers)
  return vm.check_complete(decoder.weights, mapping, "KMaXTransformerDecoder")
