"""Tests of the kMaX transformer decoder (Yu et al., "k-means Mask Transformer", ECCV 2022)."""
import numpy as np
import pytest
import tensorflow as tf

from kmax_tf import outputs
from kmax_tf.checkpoints.deeplab2_transformer_decoder_names import deeplab2_variable_map
from kmax_tf.testing import deeplab2_fixtures as fx
from kmax_tf.transformer_decoder.kmax_transformer_decoder import KMaXTransformerDecoder

PREFIX = "transformer_decoder/"
# shared/docs/deeplab2_measured.md (COCO R50): the decoder incl. its 6 auxiliary predictors.
DECODER_PARAMS = 11_813_116
AUXILIARY_PREDICTOR_PARAMS = 1_050_684
MODELS = {"coco_r50": dict(num_classes=134, num_mask_slots=128),
          "cityscapes_r50": dict(num_classes=20, num_mask_slots=256)}
# See tests/transformer_decoder/test_kmax_transformer_layer.py: DeepLab2's own
# cross-kernel noise reaches 4.7e-5 of max|value|; ours is <= 1.2e-6.
REL_TOL = 5e-5
AUX_KEYS = (outputs.PIXEL_SPACE_MASK_LOGITS, outputs.TRANSFORMER_CLASS_LOGITS,
            outputs.PIXEL_SPACE_NORMALIZED_FEATURE)
NEW_KEYS = {outputs.TRANSFORMER_CLASS_FEATURE, outputs.TRANSFORMER_MASK_FEATURE,
            outputs.FEATURE_PANOPTIC, outputs.FEATURE_SEMANTIC, outputs.AUXILIARY_OUTPUTS}


def _endpoints(stage1=None, batch=1):
  """R50 pixel-decoder endpoints at 257x257 (zeros unless given)."""
  shapes = {"decoder_stage1": (9, 2048), "decoder_stage2": (17, 1024),
            "decoder_stage3": (33, 512), "decoder_output": (65, 256), "stage5": (9, 2048)}
  eps = {k: tf.zeros([batch, s, s, c]) for k, (s, c) in shapes.items()}
  if stage1 is not None:
    eps["decoder_stage1"] = tf.constant(stage1)
  return eps


def _manifest_weights(model):
  """Manifest values under 'transformer_decoder/' only (the full model's 72M values
  take seconds to generate)."""
  return {key[len(PREFIX):-len(fx.VALUE_SUFFIX)]: fx.manifest_value(key, shape, mean, std)
          for key, shape, mean, std in fx.read_manifest(model) if key.startswith(PREFIX)}


@pytest.fixture(scope="module")
def coco():
  decoder = KMaXTransformerDecoder(**MODELS["coco_r50"], drop_path_keep_prob=0.8)
  npz = fx.forward_fixture("coco_r50")
  decoder(_endpoints())
  fx.assign_from_manifest(deeplab2_variable_map(decoder), _manifest_weights("coco_r50"))
  return decoder, npz, decoder(_endpoints(npz["pixel_decoder/decoder_stage1"]), training=False)


def test_variable_map_equals_coco_manifest_keys(coco):
  decoder = coco[0]
  assert set(deeplab2_variable_map(decoder)) == set(_manifest_weights("coco_r50"))


def test_variable_map_equals_cityscapes_manifest_keys():
  decoder = KMaXTransformerDecoder(**MODELS["cityscapes_r50"])
  decoder(_endpoints())
  weights = _manifest_weights("cityscapes_r50")
  mapping = deeplab2_variable_map(decoder)
  assert set(mapping) == set(weights)
  fx.assign_from_manifest(mapping, weights)
  assert decoder.cluster_centers.shape == (1, 256, 256)


def test_param_counts(coco):
  decoder = coco[0]
  assert decoder.count_params() == DECODER_PARAMS
  assert sum(layer.auxiliary_predictor.count_params()
             for layer in decoder.kmax_layers) == AUXILIARY_PREDICTOR_PARAMS


def test_output_endpoints(coco):
  _, _, out = coco
  assert set(out) == set(_endpoints()) | NEW_KEYS
  assert out[outputs.FEATURE_PANOPTIC] is out["decoder_output"]
  assert out[outputs.FEATURE_SEMANTIC] is out["stage5"]
  assert out[outputs.TRANSFORMER_CLASS_FEATURE].shape == (1, 128, 256)
  assert out[outputs.TRANSFORMER_MASK_FEATURE].shape == (1, 128, 256)
  auxiliary = out[outputs.AUXILIARY_OUTPUTS]
  assert isinstance(auxiliary, tuple) and len(auxiliary) == 6
  for aux, size in zip(auxiliary, (9, 9, 17, 17, 33, 33)):
    assert set(aux) == set(AUX_KEYS)
    assert aux[outputs.PIXEL_SPACE_MASK_LOGITS].shape == (1, size, size, 128)
    assert aux[outputs.PIXEL_SPACE_NORMALIZED_FEATURE].shape == (1, size, size, 128)
    assert aux[outputs.TRANSFORMER_CLASS_LOGITS].shape == (1, 128, 134)


@pytest.mark.parametrize("index", [0, 1])
def test_stride32_layers_match_deeplab2_fixture(coco, index):
  """The fixture stores only decoder_stage1 in full, which is all the two
  stride-32 layers read; the whole decoder is checked end to end with the model."""
  _, npz, out = coco
  aux = out[outputs.AUXILIARY_OUTPUTS][index]
  for key in AUX_KEYS:
    expected = npz[f"kmax_layer{index}/{key}"]
    assert np.abs(aux[key].numpy() - expected).max() <= REL_TOL * np.abs(expected).max(), key
  np.testing.assert_array_equal(
      np.argmax(aux[outputs.PIXEL_SPACE_MASK_LOGITS].numpy(), -1),
      npz[f"kmax_layer{index}/pixel_space_mask_logits@argmax"])


def test_cluster_centers_shared_across_batch(coco):
  decoder = coco[0]
  eps = _endpoints(batch=2)
  eps["decoder_stage1"] = tf.random.stateless_normal([2, 9, 9, 2048], [1, 2])
  out = decoder(eps, training=False)
  single = decoder({k: v[1:] for k, v in eps.items()}, training=False)
  np.testing.assert_allclose(out[outputs.TRANSFORMER_CLASS_FEATURE][1:].numpy(),
                             single[outputs.TRANSFORMER_CLASS_FEATURE].numpy(), atol=1e-5)


def _small_config():
  return dict(num_classes=4, num_mask_slots=5, num_layers=(1, 0, 2), channels=16,
              bottleneck_channels=16, key_channels=8, value_channels=16, num_heads=2,
              ffn_channels=32, drop_path_keep_prob=0.9, head_channels=8, mask_channels=4)


def _small_endpoints(size=3):
  return {"decoder_stage1": tf.random.stateless_normal([1, size, size, 8], [1, 1]),
          "decoder_stage2": tf.random.stateless_normal([1, 2 * size - 1, 2 * size - 1, 6], [1, 2]),
          "decoder_stage3": tf.random.stateless_normal([1, 4 * size - 3, 4 * size - 3, 4], [1, 3]),
          "decoder_output": tf.zeros([1, 8 * size - 7, 8 * size - 7, 4]),
          "stage5": tf.zeros([1, size, size, 8])}


def test_unknown_spatial_size_in_graph_mode():
  decoder = KMaXTransformerDecoder(**_small_config())
  spec = {k: tf.TensorSpec([None, None, None, v.shape[-1]]) for k, v in _small_endpoints().items()}
  run = tf.function(lambda eps: decoder(eps, training=False), input_signature=[spec])
  for size in (3, 4):
    aux = run(_small_endpoints(size))[outputs.AUXILIARY_OUTPUTS]
    assert aux[-1][outputs.PIXEL_SPACE_MASK_LOGITS].shape == (1, 4 * size - 3, 4 * size - 3, 5)


def test_get_config_round_trip():
  config = _small_config()
  eps = _small_endpoints()
  decoder = KMaXTransformerDecoder(**config, name="transformer_decoder")
  decoder(eps)
  for v in decoder.weights:
    v.assign(tf.random.stateless_uniform(v.shape, [3, len(v.name)], minval=0.5, maxval=1.5))
  clone = KMaXTransformerDecoder.from_config(decoder.get_config())
  clone(eps)
  assert [v.shape for v in clone.weights] == [v.shape for v in decoder.weights]
  clone.set_weights(decoder.get_weights())
  a, b = decoder(eps), clone(eps)
  assert len(a[outputs.AUXILIARY_OUTPUTS]) == 3
  assert [x[outputs.PIXEL_SPACE_MASK_LOGITS].shape[1] for x in a[outputs.AUXILIARY_OUTPUTS]] == [3, 9, 9]
  np.testing.assert_array_equal(a[outputs.TRANSFORMER_MASK_FEATURE].numpy(),
                                b[outputs.TRANSFORMER_MASK_FEATURE].numpy())


def test_rejects_wrong_number_of_strides():
  with pytest.raises(ValueError):
    KMaXTransformerDecoder(num_classes=4, num_layers=(2, 2))
