"""DeepLab2 checkpoint keys of the auxiliary semantic branch (decoder + head).

The key sets and shapes must equal the fixture manifests' entries under
semantic_decoder/, semantic_head_without_last_layer/ and semantic_last_layer/.
"""
import numpy as np
import pytest

from kmax_tf.checkpoints import deeplab2_semantic_names as names
from kmax_tf.heads.panoptic_single_head import PanopticSingleHead
from kmax_tf.heads.semantic_decoder import SemanticDecoder
from kmax_tf.testing import deeplab2_fixtures

PREFIXES = (names.DECODER, names.HEAD_WITHOUT_LAST_LAYER, names.LAST_LAYER)
SUFFIX = deeplab2_fixtures.VALUE_SUFFIX
# /work/shared/docs/deeplab2_measured.md: "auxiliary semantic decoder 15,754,848" (R50 COCO).
COCO_R50_DECODER_PARAMS = 15_754_848


def _manifest_shapes(model_name):
  """{key without suffix: shape} of the semantic branch in a fixture manifest."""
  return {key[:-len(SUFFIX)]: shape
          for key, shape, _, _ in deeplab2_fixtures.read_manifest(model_name)
          if key.split("/")[0] in PREFIXES}


def _build(shapes):
  """Builds the branch; input channel counts are read off the manifest only to
  make inputs of the right width (the key rules do not look at shapes)."""
  num_classes = shapes[f"{names.LAST_LAYER}/kernel"][-1]
  head = PanopticSingleHead(256, num_classes, activation="gelu", name="semantic_head")
  aspp_in = f"{names.DECODER}/_aspp/_conv_bn_act/_conv/kernel"
  if aspp_in not in shapes:  # Cityscapes: the head reads the stride-32 feature directly.
    in_channels = shapes[f"{names.HEAD_WITHOUT_LAST_LAYER}/_conv1_bn_act/_depthwise/"
                         "_depthwise_conv/depthwise_kernel"][2]
    head(np.zeros([1, 3, 3, in_channels], np.float32))
    return None, head
  decoder = SemanticDecoder(name="semantic_decoder")
  features = {
      "feature_semantic": np.zeros([1, 3, 3, shapes[aspp_in][2]], np.float32),
      "res3": np.zeros([1, 5, 5, shapes[f"{names.DECODER}/_low_level_conv1/_conv/kernel"][2]],
                       np.float32),
      "res2": np.zeros([1, 9, 9, shapes[f"{names.DECODER}/_low_level_conv2/_conv/kernel"][2]],
                       np.float32),
  }
  head(decoder(features))
  return decoder, head


@pytest.mark.parametrize("model_name", deeplab2_fixtures.MODEL_NAMES)
def test_keys_and_shapes_equal_manifest(model_name):
  shapes = _manifest_shapes(model_name)
  decoder, head = _build(shapes)
  mapping = names.deeplab2_variable_map(decoder, head)
  assert set(mapping) == set(shapes)
  bad = {k: (tuple(v.shape), shapes[k]) for k, v in mapping.items() if tuple(v.shape) != shapes[k]}
  assert not bad
  variables = list(decoder.weights if decoder is not None else []) + list(head.weights)
  assert len({v.ref() for v in mapping.values()}) == len(variables) == len(mapping)


def test_coco_r50_parameter_counts_and_assignment():
  shapes = _manifest_shapes("coco_r50")
  decoder, head = _build(shapes)
  count = lambda layer: sum(int(np.prod(v.shape)) for v in layer.weights)
  manifest_count = lambda prefixes: sum(int(np.prod(s)) for k, s in shapes.items()
                                        if k.split("/")[0] in prefixes)
  assert count(decoder) == COCO_R50_DECODER_PARAMS == manifest_count((names.DECODER,))
  assert count(head) == manifest_count((names.HEAD_WITHOUT_LAST_LAYER, names.LAST_LAYER))
  assert count(head) == 108_422
  mapping = names.deeplab2_variable_map(decoder, head)
  key = f"{names.DECODER}/_fusion_conv2/_conv1_bn_act/_pointwise/_conv/kernel"
  assert mapping[key] is decoder.fusion_convs[1][1].conv.kernel
  assert mapping[f"{names.LAST_LAYER}/bias"] is head.final_conv.bias
  # Manifest values go in through the map (only the semantic rows are generated).
  rows = [r for r in deeplab2_fixtures.read_manifest("coco_r50") if r[0][:-len(SUFFIX)] in mapping]
  weights = {key[:-len(SUFFIX)]: deeplab2_fixtures.manifest_value(key, shape, mean, std)
             for key, shape, mean, std in rows}
  deeplab2_fixtures.assign_from_manifest(mapping, weights)
  np.testing.assert_array_equal(decoder.aspp.aspp_convs[0].batch_norm.moving_variance.numpy(),
                                weights[f"{names.DECODER}/_aspp/_aspp_conv1/_conv_bn_act/"
                                        "_batch_norm/moving_variance"])


def test_requires_built_layers():
  with pytest.raises(ValueError):
    names.deeplab2_variable_map(SemanticDecoder(), None)
  with pytest.raises(ValueError):
    names.deeplab2_variable_map(None, PanopticSingleHead(256, 134))
