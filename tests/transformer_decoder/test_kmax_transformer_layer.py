"""Tests of one kMaX decoder layer (Yu et al., "k-means Mask Transformer", ECCV 2022)."""
import numpy as np
import pytest
import tensorflow as tf

from kmax_tf import outputs
from kmax_tf.checkpoints.deeplab2_transformer_decoder_names import kmax_layer_variable_map
from kmax_tf.testing import deeplab2_fixtures as fx
from kmax_tf.transformer_decoder.kmax_transformer_layer import KMaXTransformerLayer

MODEL = "coco_r50"
# DeepLab2's own cross-kernel noise on these arrays (fixture README, "Run-to-run
# and implementation noise": oneDNN off / tf.function) reaches 4.7e-5 of
# max|value|; our BN runs fused (4-D/5-D) where DeepLab2's SyncBN does not,
# which alone moves them by <= 1.2e-6 of max|value|.
REL_TOL = 5e-5
AUX_KEYS = (outputs.PIXEL_SPACE_MASK_LOGITS, outputs.TRANSFORMER_CLASS_LOGITS,
            outputs.PIXEL_SPACE_NORMALIZED_FEATURE)


def _manifest_weights(prefix):
  """Manifest values of the keys under `prefix` (prefix removed), generated lazily
  because the whole model's 72M values take seconds."""
  return {key[len(prefix):-len(fx.VALUE_SUFFIX)]: fx.manifest_value(key, shape, mean, std)
          for key, shape, mean, std in fx.read_manifest(MODEL) if key.startswith(prefix)}


def _small_layer(**kwargs):
  config = dict(num_classes=4, channels=16, bottleneck_channels=16, key_channels=8,
                value_channels=16, num_heads=2, ffn_channels=32, head_channels=8,
                mask_channels=4)
  config.update(kwargs)
  layer = KMaXTransformerLayer(**config)
  layer(_small_inputs())
  return layer


def _small_inputs(seed=0):
  return (tf.random.stateless_normal([2, 5, 6, 12], [seed, 1]),
          tf.random.stateless_normal([2, 7, 16], [seed, 2]))


def test_get_config_round_trip():
  layer = _small_layer(name="kmax_layer")
  for v in layer.weights:
    v.assign(tf.random.stateless_uniform(v.shape, [2, len(v.name)], minval=0.5, maxval=1.5))
  clone = KMaXTransformerLayer.from_config(layer.get_config())
  clone(_small_inputs())
  assert [v.shape for v in clone.weights] == [v.shape for v in layer.weights]
  clone.set_weights(layer.get_weights())
  x = _small_inputs(seed=3)
  (a, aux_a), (b, aux_b) = layer(x), clone(x)
  np.testing.assert_array_equal(a.numpy(), b.numpy())
  for k in AUX_KEYS:
    np.testing.assert_array_equal(aux_a[k].numpy(), aux_b[k].numpy())
  assert aux_a[outputs.PIXEL_SPACE_MASK_LOGITS].shape == (2, 5, 6, 7)
  assert aux_a[outputs.TRANSFORMER_CLASS_LOGITS].shape == (2, 7, 4)


def test_drop_path_only_in_training():
  layer = _small_layer(drop_path_keep_prob=0.5)
  for v in layer.weights:   # non-zero residual branches (their BN gammas start at 0)
    v.assign(tf.random.stateless_uniform(v.shape, [4, len(v.name)], minval=0.5, maxval=1.5))
  x = (tf.tile(_small_inputs()[0][:1], [16, 1, 1, 1]), tf.tile(_small_inputs()[1][:1], [16, 1, 1]))
  inference = layer(x, training=False)[0].numpy()
  np.testing.assert_array_equal(inference, layer(x, training=False)[0].numpy())
  trained = layer(x, training=True)[0].numpy()
  # Identical examples differ only through their per-example drop-path draws.
  assert len({row.tobytes() for row in trained}) > 1
  deterministic = _small_layer(drop_path_keep_prob=1.0)
  deterministic.set_weights(layer.get_weights())
  np.testing.assert_array_equal(deterministic(x, training=True)[0].numpy()[0],
                                deterministic(x, training=True)[0].numpy()[1])


@pytest.fixture(scope="module")
def stride32_parity():
  """Runs DeepLab2's first two kMaX layers (stride 32) on the fixture's full
  decoder_stage1, starting from the manifest's cluster centers."""
  npz = fx.forward_fixture(MODEL)
  pixels = tf.constant(npz["pixel_decoder/decoder_stage1"])
  centers = tf.constant(_manifest_weights("transformer_decoder/cluster_centers")[""])
  results = []
  for i in range(2):
    layer = KMaXTransformerLayer(134)
    layer((pixels, centers))
    prefix = f"transformer_decoder/_kmax_decoder/{i}/_block1_transformer/"
    mapping = kmax_layer_variable_map(layer)
    fx.assign_from_manifest(mapping, _manifest_weights(prefix))
    centers, aux = layer((pixels, centers), training=False)
    results.append(aux)
  return npz, results


@pytest.mark.parametrize("index", [0, 1])
def test_parity_with_deeplab2_fixture(stride32_parity, index):
  npz, results = stride32_parity
  aux = results[index]
  for key in AUX_KEYS:
    expected = npz[f"kmax_layer{index}/{key}"]
    actual = aux[key].numpy()
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= REL_TOL * np.abs(expected).max(), key
  # The k-means assignment this layer used must be DeepLab2's, pixel for pixel.
  np.testing.assert_array_equal(
      np.argmax(aux[outputs.PIXEL_SPACE_MASK_LOGITS].numpy(), -1),
      npz[f"kmax_layer{index}/pixel_space_mask_logits@argmax"])
