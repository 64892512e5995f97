"""Tests of the ConvNeXt pixel encoder (Liu et al., CVPR 2022) against DeepLab2's kMaX fixtures."""
import numpy as np
import pytest
import scipy.special
import tensorflow as tf

from kmax_tf.checkpoints.deeplab2_convnext_names import deeplab2_variable_map
from kmax_tf.pixel_encoders.convnext import ConvNeXt
from kmax_tf.pixel_encoders.convnext import drop_path_keep_probs
from kmax_tf.pixel_encoders.convnext_sizes import CONVNEXT_SIZES
from kmax_tf.testing import deeplab2_fixtures as fx

MODEL = "coco_convnext_tiny"
PREFIX = "encoder/"
ENDPOINTS = tuple(f"{p}{k}" for k in range(1, 6) for p in ("stage", "res"))

# Encoder parameter counts of DeepLab2's ConvNeXt (measured by building DeepLab2's
# convnext.ConvNeXt with zero_padding_for_downstream=True; tiny also in
# shared/docs/deeplab2_measured.md; equal to DeepLab2's own convnext_test.py).
PARAM_COUNTS = {
    "convnext_tiny": 27_818_592,
    "convnext_small": 49_453_152,
    "convnext_base": 87_564_416,
    "convnext_large": 196_227_264,
    "convnext_xlarge": 348_143_872,
}
# Cross-kernel noise of DeepLab2's own encoder endpoints (fixture summary.json,
# oneDNN off) is <= 1.8e-6 of max|value|; allow 1e-5 of max|value|.
REL_TOL = 1e-5


def _analytic_param_count(depths, dims):
  stem = 4 * 4 * 3 * dims[0] + dims[0] + 2 * dims[0]
  down = sum(2 * dims[i] + 2 * 2 * dims[i] * dims[i + 1] + dims[i + 1] for i in range(3))
  # dwconv 7x7 + bias, LayerNorm, 1x1 to 4d + bias, 1x1 back + bias, layer scale.
  block = lambda d: 50 * d + 2 * d + (4 * d * d + 4 * d) + (4 * d * d + d) + d
  return stem + down + sum(n * block(d) for n, d in zip(depths, dims))


@pytest.fixture(scope="module")
def fixture_run():
  npz = fx.forward_fixture(MODEL)
  encoder = ConvNeXt(**CONVNEXT_SIZES["convnext_tiny"], name="encoder")
  x = tf.constant(npz["input_uint8"], tf.float32) / 127.5 - 1.0
  encoder(x[:, :65, :65])
  weights = {k[len(PREFIX):]: v for k, v in fx.manifest_weights(MODEL).items()
             if k.startswith(PREFIX)}
  mapping = deeplab2_variable_map(encoder)
  fx.assign_from_manifest(mapping, weights)
  return npz, mapping, weights, encoder(x, training=False)


def test_variable_map_equals_manifest_keys(fixture_run):
  _, mapping, weights, _ = fixture_run
  assert set(mapping) == set(weights)
  assert len(mapping) == 178


def test_parity_with_deeplab2_fixture(fixture_run):
  npz, _, _, out = fixture_run
  assert set(out) == set(ENDPOINTS)
  expected_shapes = {1: (65, 96), 2: (65, 96), 3: (33, 192), 4: (17, 384), 5: (9, 768)}
  for k, (size, channels) in expected_shapes.items():
    stage = out[f"stage{k}"].numpy()
    assert stage.shape == (1, size, size, channels)
    expected, actual = fx.compare(npz, f"encoder/stage{k}", stage)
    scale = np.abs(expected).max()
    assert np.abs(expected - actual).max() <= REL_TOL * scale, k
    # Full-array statistics: [sum, sum_sq, sum_abs, min, max, mean, std].
    stats = npz[f"encoder/stage{k}@stats"]
    full = stage.astype(np.float64)
    ours = [full.sum(), (full ** 2).sum(), np.abs(full).sum(), full.min(), full.max(),
            full.mean(), full.std()]
    np.testing.assert_allclose(ours[3:], stats[3:], atol=REL_TOL * scale)
    np.testing.assert_allclose(ours[:3], stats[:3], rtol=1e-5, atol=REL_TOL * scale * full.size)
    # resN is the exact (erf) GELU of stageN.
    gelu = 0.5 * full * (1.0 + scipy.special.erf(full / np.sqrt(2.0)))
    np.testing.assert_allclose(out[f"res{k}"].numpy(), gelu, atol=1e-6)


@pytest.mark.parametrize("name", ["convnext_tiny", "convnext_small"])
def test_parameter_counts(name):
  size = CONVNEXT_SIZES[name]
  encoder = ConvNeXt(**size)
  encoder(tf.zeros([1, 33, 33, 3]))
  assert encoder.count_params() == PARAM_COUNTS[name]
  assert _analytic_param_count(size["depths"], size["dims"]) == PARAM_COUNTS[name]
  assert len(deeplab2_variable_map(encoder)) == len(encoder.weights)


@pytest.mark.large
@pytest.mark.parametrize("name", ["convnext_base", "convnext_large"])
def test_parameter_counts_big_sizes(name):
  encoder = ConvNeXt(**CONVNEXT_SIZES[name])
  encoder(tf.zeros([1, 33, 33, 3]))
  assert encoder.count_params() == PARAM_COUNTS[name]


def test_analytic_parameter_counts_all_sizes():
  assert set(CONVNEXT_SIZES) == set(PARAM_COUNTS)
  for name, size in CONVNEXT_SIZES.items():
    assert _analytic_param_count(size["depths"], size["dims"]) == PARAM_COUNTS[name], name


def test_drop_path_schedule_is_deeplab2_float32_linspace():
  for keep, n in [(0.7, 18), (0.6, 36), (0.3, 36), (1.0, 18)]:
    assert drop_path_keep_probs(keep, n) == [float(v) for v in tf.linspace(1.0, keep, n).numpy()]
  encoder = ConvNeXt(depths=(1, 2, 1, 1), dims=(8, 8, 8, 8), drop_path_keep_prob=0.6)
  rates = [b.drop_path_keep_prob for blocks in encoder.stages for b in blocks]
  assert rates[0] == 1.0 and rates[-1] == pytest.approx(0.6) and len(rates) == 5


def test_without_downstream_padding_strides():
  encoder = ConvNeXt(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32), zero_padding_for_downstream=False)
  out = encoder(tf.zeros([1, 64, 64, 3]))
  assert [out[f"stage{k}"].shape[1] for k in range(1, 6)] == [16, 16, 8, 4, 2]


def test_training_without_drop_path_equals_inference():
  encoder = ConvNeXt(depths=(1, 1, 2, 1), dims=(8, 16, 24, 32))
  x = tf.random.stateless_normal([2, 33, 33, 3], seed=[1, 2])
  a, b = encoder(x, training=False), encoder(x, training=True)
  for k in ENDPOINTS:
    np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())


def test_get_config_round_trip():
  encoder = ConvNeXt(depths=(1, 1, 2, 1), dims=(8, 16, 24, 32), drop_path_keep_prob=0.8,
                     layer_scale_init_value=0.5, name="enc")
  x = tf.random.stateless_normal([1, 33, 33, 3], seed=[3, 4])
  encoder(x)
  for i, v in enumerate(encoder.weights):
    v.assign(tf.random.stateless_normal(v.shape, seed=[i, 5]) * 0.2)
  config = encoder.get_config()
  clone = ConvNeXt.from_config(config)
  clone(x)
  assert clone.get_config() == config
  assert [v.shape for v in clone.weights] == [v.shape for v in encoder.weights]
  clone.set_weights(encoder.get_weights())
  a, b = encoder(x), clone(x)
  for k in ENDPOINTS:
    np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())
  assert deeplab2_variable_map(clone).keys() == deeplab2_variable_map(encoder).keys()
