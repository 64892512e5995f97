"""Tests of the auxiliary semantic decoder (Panoptic-DeepLab single decoder).

The low-level fusion is checked against an independent NumPy reference that
starts from the ASPP output (ASPP has its own reference test); the parameter
count is DeepLab2's measured count for kMaX R50 COCO.
"""
import numpy as np
import pytest
import scipy.special

from kmax_tf.heads.semantic_decoder import SemanticDecoder
from kmax_tf.testing import layer_checks

# /work/shared/docs/deeplab2_measured.md: "auxiliary semantic decoder 15,754,848".
COCO_R50_DECODER_PARAMS = 15_754_848


def _bn_gelu(y, bn):
  y = ((y - bn.moving_mean.numpy()) / np.sqrt(bn.moving_variance.numpy() + 1e-3)
       * bn.gamma.numpy() + bn.beta.numpy())
  return 0.5 * y * (1.0 + scipy.special.erf(y / np.sqrt(2.0)))


def _pointwise(x, layer):
  return _bn_gelu(x @ layer.conv.kernel.numpy()[0, 0].astype(np.float64), layer.batch_norm)


def _depthwise5(x, layer):
  k = layer.conv.depthwise_kernel.numpy().astype(np.float64)[:, :, :, 0]
  _, h, w, _ = x.shape
  xp = np.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]])
  y = sum(xp[:, i:i + h, j:j + w, :] * k[i, j] for i in range(5) for j in range(5))
  return _bn_gelu(y, layer.batch_norm)


def _resize_align_corners(x, out_h, out_w):
  def coords(n_in, n_out):
    pos = np.arange(n_out) * ((n_in - 1) / (n_out - 1))
    lo = np.floor(pos).astype(int)
    return lo, np.minimum(lo + 1, n_in - 1), pos - lo
  y0, y1, dy = coords(x.shape[1], out_h)
  x0, x1, dx = coords(x.shape[2], out_w)
  rows = x[:, y0] * (1 - dy)[None, :, None, None] + x[:, y1] * dy[None, :, None, None]
  return rows[:, :, x0] * (1 - dx)[None, None, :, None] + rows[:, :, x1] * dx[None, None, :, None]


def _features(seed=0, channels=(12, 6, 5)):
  rng = np.random.RandomState(seed)
  return {
      "feature_semantic": rng.normal(size=(2, 3, 4, channels[0])).astype(np.float32),
      "res3": rng.normal(size=(2, 5, 7, channels[1])).astype(np.float32),
      "res2": rng.normal(size=(2, 9, 13, channels[2])).astype(np.float32),
      # Present in the endpoint dict but not read by the decoder.
      "res5": np.full((2, 3, 4, channels[0]), np.nan, np.float32),
  }


def _small_decoder(**kwargs):
  decoder = SemanticDecoder(low_level_channels_project=(4, 3), aspp_channels=8,
                            atrous_rates=(1, 2, 3), decoder_channels=6, name="semantic_decoder",
                            **kwargs)
  decoder(_features())
  layer_checks.randomize_weights(decoder, 3)
  return decoder


def test_fusion_matches_numpy_reference():
  decoder = _small_decoder()
  features = _features()
  out = decoder(features, training=False).numpy()
  assert out.shape == (2, 9, 13, 6)
  x = decoder.aspp(features["feature_semantic"], training=False).numpy().astype(np.float64)
  for key, project, (depthwise, pointwise) in zip(("res3", "res2"), decoder.low_level_convs,
                                                  decoder.fusion_convs):
    low = _pointwise(features[key].astype(np.float64), project)
    x = np.concatenate([_resize_align_corners(x, *low.shape[1:3]), low], axis=-1)
    x = _pointwise(_depthwise5(x, depthwise), pointwise)
  np.testing.assert_allclose(out, x, atol=3e-5, rtol=1e-5)
  # Fusion input channels: running feature first, then the projection.
  assert decoder.fusion_convs[0][0].conv.depthwise_kernel.shape == (5, 5, 12, 1)
  assert decoder.fusion_convs[1][1].conv.kernel.shape == (1, 1, 9, 6)


def test_standard_conv_fusion():
  decoder = _small_decoder(decoder_conv_type="standard_conv")
  assert [len(f) for f in decoder.fusion_convs] == [1, 1]
  assert decoder.fusion_convs[0][0].conv.kernel.shape == (5, 5, 12, 6)
  assert decoder(_features(), training=False).shape == (2, 9, 13, 6)


def test_pool_size_is_forwarded_to_aspp():
  decoder = _small_decoder()
  decoder.set_pool_size((2, 2))
  assert decoder.get_pool_size() == (2, 2) == decoder.aspp.get_pool_size()
  decoder.reset_pooling_layer()
  assert decoder.get_pool_size() == (None, None)


def test_coco_r50_parameter_count():
  decoder = SemanticDecoder(name="semantic_decoder")
  decoder(_features(channels=(2048, 512, 256)))
  assert decoder.aspp.aspp_convs[1].conv.dilation_rate == (12, 12)
  assert decoder.aspp.proj_dropout.rate == pytest.approx(0.1)
  assert sum(int(np.prod(v.shape)) for v in decoder.weights) == COCO_R50_DECODER_PARAMS


def test_get_config_round_trip():
  decoder = _small_decoder(aspp_pool_size=(2, 3))
  clone = SemanticDecoder.from_config(decoder.get_config())
  assert clone.get_config() == decoder.get_config()
  features = _features()
  clone(features)
  for a, b in zip(decoder.weights, clone.weights):
    assert a.shape == b.shape
    b.assign(a)
  np.testing.assert_array_equal(clone(features, training=False).numpy(),
                                decoder(features, training=False).numpy())


def test_mismatched_low_level_lists_raise():
  with pytest.raises(ValueError):
    SemanticDecoder(low_level_feature_keys=("res3",), low_level_channels_project=(64, 32))
