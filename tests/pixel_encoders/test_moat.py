"""MOAT / tiny-MOAT pixel encoders (Yang et al., ICLR 2023) vs DeepLab2.

References (tests/testdata/deeplab2_moat/README.md): DeepLab2 64bc1c1 run on
manifest weights: the encoder endpoints of kMaX COCO with tiny-MOAT-0 (with
position embedding, 257x257) and of MOAT-0 without position embedding
(encoder only, 129x129).

Parity tolerance: every endpoint within 1e-4 * max|DeepLab2 value|. DeepLab2
against itself with oneDNN off moves these endpoints by up to 1.1e-5
absolute (README), and our BN is the fusable kind (DeepLab2's is the
synchronized, non-fused one), so the differences are float32 round-off in
another summation order; 1e-4 relative leaves room for other CPU kernels.
"""
import numpy as np
import pytest
import scipy.special
import tensorflow as tf

from kmax_tf.checkpoints import deeplab2_moat_names
from kmax_tf.layers import mbconv_block
from kmax_tf.layers import moat_block
from kmax_tf.pixel_encoders import moat
from kmax_tf.pixel_encoders import moat_sizes
from kmax_tf.testing import deeplab2_fixtures as fx

PREFIX = "encoder/"
REL_TOL = 1e-4
ENDPOINTS = tuple(f"{p}{k}" for k in range(1, 6) for p in ("stage", "res"))

# DeepLab2 64bc1c1: moat.get_model(<name>, input_shape=[65, 65, 3],
# survival_rate=1.0).count_params() (all weights, incl. BN moving statistics;
# no classification head). Measured by the reference script
# (tests/testdata/deeplab2_moat/README.md).
PARAM_COUNTS = {
    "moat0": 27_164_932,
    "moat0_no_pe": 27_095_584,
    "moat1": 40_975_240,
    "moat1_no_pe": 40_844_656,
    "moat2": 72_591_968,
    "moat2_no_pe": 72_417_856,
    "moat3": 189_116_080,
    "moat3_no_pe": 188_694_320,
    "moat4": 481_867_648,
    "moat4_no_pe": 481_192_832,
    "tiny_moat0": 3_127_404,
    "tiny_moat0_no_pe": 3_104_288,
    "tiny_moat1": 4_838_215,
    "tiny_moat1_no_pe": 4_809_320,
    "tiny_moat2": 9_374_589,
    "tiny_moat2_no_pe": 9_334_136,
    "tiny_moat3": 18_966_030,
    "tiny_moat3_no_pe": 18_908_240,
}
# Trainable parameters only (DeepLab2's count_params minus BN moving statistics).
TRAINABLE_COUNTS = {
    "moat0": 27_076_356,
    "moat0_no_pe": 27_007_008,
    "moat1": 40_827_912,
    "moat1_no_pe": 40_697_328,
    "moat2": 72_395_360,
    "moat2_no_pe": 72_221_248,
    "moat3": 188_674_480,
    "moat3_no_pe": 188_252_720,
    "moat4": 481_161_088,
    "moat4_no_pe": 480_486_272,
    "tiny_moat0": 3_097_836,
    "tiny_moat0_no_pe": 3_074_720,
    "tiny_moat1": 4_801_255,
    "tiny_moat1_no_pe": 4_772_360,
    "tiny_moat2": 9_322_845,
    "tiny_moat2_no_pe": 9_282_392,
    "tiny_moat3": 18_892_110,
    "tiny_moat3_no_pe": 18_834_320,
}


def _encoder(name, **kwargs):
  return moat.MOAT(**moat_sizes.MOAT_SIZES[name], name="encoder", **kwargs)


def _encoder_weights(model_name):
  return {key[len(PREFIX):-len(fx.VALUE_SUFFIX)]: fx.manifest_value(key, shape, mean, std)
          for key, shape, mean, std in fx.read_manifest(model_name) if key.startswith(PREFIX)}


def _check_endpoints(npz, out):
  for k in range(1, 6):
    stage = out[f"stage{k}"].numpy()
    expected, actual = fx.compare(npz, f"encoder/stage{k}", stage)
    scale = np.abs(expected).max()
    diff = np.abs(expected - actual).max()
    assert diff <= REL_TOL * scale, f"stage{k}: {diff} > {REL_TOL} * {scale}"
    full = stage.astype(np.float64)
    gelu = 0.5 * full * (1.0 + scipy.special.erf(full / np.sqrt(2.0)))
    np.testing.assert_allclose(out[f"res{k}"].numpy(), gelu, atol=1e-5)


@pytest.mark.parametrize("model_name,encoder_name,size", [
    ("coco_tiny_moat0", "tiny_moat0", 257),
    ("moat0_no_pe", "moat0_no_pe", 129),
])
def test_parity_with_deeplab2(model_name, encoder_name, size):
  npz = fx.forward_fixture(model_name)
  encoder = _encoder(encoder_name)
  x = tf.constant(npz["input_uint8"], tf.float32) / 127.5 - 1.0
  assert x.shape[1] == size
  encoder(x)
  mapping = deeplab2_moat_names.deeplab2_variable_map(encoder)
  weights = _encoder_weights(model_name)
  assert set(mapping) == set(weights)
  fx.assign_from_manifest(mapping, weights)
  out = encoder(x, training=False)
  assert set(out) == set(ENDPOINTS)
  strides = [2, 4, 8, 16, 32]
  for k, stride in enumerate(strides, 1):
    assert out[f"stage{k}"].shape[1:3] == (-(-size // stride),) * 2
  _check_endpoints(npz, out)


def test_position_embedding_is_read_on_every_call():
  """DeepLab2 freezes the bias at build time; ours follows the variable."""
  encoder = moat.MOAT(stem_sizes=(8, 8), num_blocks=(1, 1, 1, 1), hidden_sizes=(8, 16, 32, 32))
  x = tf.random.stateless_normal([1, 65, 65, 3], seed=[1, 2])
  before = encoder(x)["stage5"].numpy()
  table = encoder.stages[3][0].attention.relative_position_embedding
  assert table.shape == (1, 13, 13)
  table.assign(table * 5.0 + 1.0)
  assert np.abs(encoder(x)["stage5"].numpy() - before).max() > 1e-3 * np.abs(before).max()


def _analytic_counts(stem_sizes, num_blocks, hidden_sizes, use_position_embedding, **_):
  """(all weights, trainable) from the architecture rules, without building."""
  total, bn_stats = 0, 0
  c = 3
  for i, s in enumerate(stem_sizes):
    total += 9 * c * s + s
    if i < len(stem_sizes) - 1:
      total, bn_stats = total + 4 * s, bn_stats + 2 * s
    c = s
  for stage, (n, h) in enumerate(zip(num_blocks, hidden_sizes)):
    for j in range(n):
      inner = 4 * h
      total += (c * h + h if c != h else 0) + c * inner + 9 * inner + inner * h + h
      total, bn_stats = total + 4 * (c + 2 * inner), bn_stats + 2 * (c + 2 * inner)
      if stage < 2:
        se = int(h * 0.25)
        total += 2 * inner * se + se + inner
      else:
        heads = h // 32
        total += 2 * h + 4 * (h * h + h)
        if use_position_embedding:
          total += heads * (2 * (14 if stage == 2 else 7) - 1) ** 2
      c = h
  return total, total - bn_stats


def test_analytic_parameter_counts_all_variants():
  assert set(PARAM_COUNTS) == set(moat_sizes.MOAT_SIZES)
  for name, size in moat_sizes.MOAT_SIZES.items():
    assert _analytic_counts(**size) == (PARAM_COUNTS[name], TRAINABLE_COUNTS[name]), name


def _check_built_counts(name):
  encoder = _encoder(name)
  encoder(tf.zeros([1, 33, 33, 3]))
  assert encoder.count_params() == PARAM_COUNTS[name]
  assert sum(int(np.prod(v.shape)) for v in encoder.trainable_weights) == TRAINABLE_COUNTS[name]
  assert len(deeplab2_moat_names.deeplab2_variable_map(encoder)) == len(encoder.weights)
  assert len(deeplab2_moat_names.imagenet_variable_map(encoder)) == len(encoder.trainable_weights)


@pytest.mark.parametrize("name", [n for n in PARAM_COUNTS if n.startswith(("tiny", "moat0", "moat1"))])
def test_parameter_counts(name):
  _check_built_counts(name)


@pytest.mark.large
@pytest.mark.parametrize("name", [n for n in PARAM_COUNTS if n.startswith(("moat2", "moat3", "moat4"))])
def test_parameter_counts_big_sizes(name):
  _check_built_counts(name)


def test_deeplab2_names_and_imagenet_normalizations():
  assert moat_sizes.DEEPLAB2_BACKBONE_NAMES["tiny_moat0_pretrain_256_1k"] == "tiny_moat0"
  assert moat_sizes.DEEPLAB2_BACKBONE_NAMES["moat2_finetune_384_no_pe_22k"] == "moat2_no_pe"
  assert len(moat_sizes.DEEPLAB2_BACKBONE_NAMES) == 18
  assert sorted(set(moat_sizes.DEEPLAB2_BACKBONE_NAMES.values())) == sorted(moat_sizes.MOAT_SIZES)
  assert moat_sizes.IMAGENET_INPUT_NORMALIZATION["moat1_no_pe"] == "imagenet"
  assert moat_sizes.IMAGENET_INPUT_NORMALIZATION["moat3"] == "inception"


def test_imagenet_input_normalization():
  """'imagenet' sees (image - 255 mean) / (255 std) where 'inception' sees image/127.5 - 1."""
  image = tf.random.stateless_uniform([1, 33, 33, 3], seed=[5, 6], maxval=255.0)
  a, b = _encoder("tiny_moat0"), _encoder("tiny_moat0", input_normalization="imagenet")
  a(image / 127.5 - 1.0)
  b(image / 127.5 - 1.0)
  b.set_weights(a.get_weights())
  mean = np.array(moat.IMAGENET_MEAN, np.float32) * 255.0
  std = np.array(moat.IMAGENET_STD, np.float32) * 255.0
  expected = a((image - mean) / std)["stage5"].numpy()
  np.testing.assert_allclose(b(image / 127.5 - 1.0)["stage5"].numpy(), expected, rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="input_normalization"):
    _encoder("tiny_moat0", input_normalization="caffe")


def test_drop_path_schedule_is_deeplab2s():
  encoder = _encoder("tiny_moat0", drop_path_keep_prob=0.8)
  rates = [b.drop_path_keep_prob for blocks in encoder.stages for b in blocks]
  assert rates == [1.0 - (1.0 - 0.8) * i / 14 for i in range(14)]
  assert moat.survival_probabilities(1.0, 3) == [1.0, 1.0, 1.0]


def test_get_config_round_trip():
  encoder = moat.MOAT(stem_sizes=(8, 8), num_blocks=(1, 2, 1, 1), hidden_sizes=(8, 16, 32, 32),
                      drop_path_keep_prob=0.9, name="enc")
  x = tf.random.stateless_normal([2, 33, 33, 3], seed=[3, 4])
  encoder(x)
  config = encoder.get_config()
  clone = moat.MOAT.from_config(config)
  clone(x)
  assert clone.get_config() == config
  clone.set_weights(encoder.get_weights())
  a, b = encoder(x, training=False), clone(x, training=False)
  for k in ENDPOINTS:
    np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())
