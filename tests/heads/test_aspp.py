"""Tests of ASPP (DeepLabv3, Chen et al. 2017) against an independent NumPy reference."""
import numpy as np
import pytest
import scipy.special
import tensorflow as tf

from kmax_tf.heads.aspp import ASPP
from kmax_tf.testing import layer_checks


def _gelu(x):
  return 0.5 * x * (1.0 + scipy.special.erf(x / np.sqrt(2.0)))


def _conv_same(x, kernel, rate=1):
  """Stride-1 'same' conv, NHWC, float64; kernel [k, k, Cin, Cout]."""
  k = kernel.shape[0]
  pad = (k - 1) * rate // 2
  _, h, w, _ = x.shape
  xp = np.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
  y = np.zeros(x.shape[:3] + (kernel.shape[-1],))
  for i in range(k):
    for j in range(k):
      y += xp[:, i * rate:i * rate + h, j * rate:j * rate + w, :] @ kernel[i, j]
  return y


def _conv_bn_gelu(x, layer, rate=1):
  bn = layer.batch_norm
  y = _conv_same(x, layer.conv.kernel.numpy().astype(np.float64), rate)
  y = ((y - bn.moving_mean.numpy()) / np.sqrt(bn.moving_variance.numpy() + 1e-3)
       * bn.gamma.numpy() + bn.beta.numpy())
  return _gelu(y)


def _resize_align_corners(x, out_h, out_w):
  def coords(n_in, n_out):
    scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    pos = np.arange(n_out) * scale
    lo = np.floor(pos).astype(int)
    return lo, np.minimum(lo + 1, n_in - 1), pos - lo
  y0, y1, dy = coords(x.shape[1], out_h)
  x0, x1, dx = coords(x.shape[2], out_w)
  rows = x[:, y0] * (1 - dy)[None, :, None, None] + x[:, y1] * dy[None, :, None, None]
  return rows[:, :, x0] * (1 - dx)[None, None, :, None] + rows[:, :, x1] * dx[None, None, :, None]


def _numpy_aspp(x, aspp, pool_size=None):
  x = x.astype(np.float64)
  _, h, w, _ = x.shape
  branches = [_conv_bn_gelu(x, aspp.conv_bn_act)]
  branches += [_conv_bn_gelu(x, conv, rate)
               for conv, rate in zip(aspp.aspp_convs, aspp.atrous_rates)]
  ph, pw = pool_size or (h, w)
  pooled = np.stack([np.stack([x[:, i:i + ph, j:j + pw].mean(axis=(1, 2))
                               for j in range(w - pw + 1)], axis=1)
                     for i in range(h - ph + 1)], axis=1)
  branches.append(_resize_align_corners(_conv_bn_gelu(pooled, aspp.pool_conv_bn_act), h, w))
  return _conv_bn_gelu(np.concatenate(branches, axis=-1), aspp.proj_conv_bn_act)


def _input(shape=(2, 7, 9, 6), seed=0):
  return np.random.RandomState(seed).normal(size=shape).astype(np.float32)


def _built_aspp(**kwargs):
  aspp = ASPP(4, (1, 2, 4), activation="gelu", name="aspp", **kwargs)
  aspp(_input())
  layer_checks.randomize_weights(aspp, 1)
  return aspp


def test_matches_numpy_reference_global_pooling():
  aspp = _built_aspp()
  x = _input()
  assert aspp.get_pool_size() == (None, None)
  assert aspp.aspp_convs[2].conv.kernel.shape == (3, 3, 6, 4)
  assert aspp.aspp_convs[2].conv.dilation_rate == (4, 4)
  assert aspp.proj_conv_bn_act.conv.kernel.shape == (1, 1, 20, 4)
  out = aspp(x, training=False).numpy()
  np.testing.assert_allclose(out, _numpy_aspp(x, aspp), atol=3e-5, rtol=1e-5)


def test_tiled_pooling_and_reset():
  aspp = _built_aspp()
  x = _input()
  global_out = aspp(x, training=False).numpy()
  aspp.set_pool_size((3, 4))
  assert aspp.get_pool_size() == (3, 4)
  tiled = aspp(x, training=False).numpy()
  np.testing.assert_allclose(tiled, _numpy_aspp(x, aspp, (3, 4)), atol=3e-5, rtol=1e-5)
  assert np.max(np.abs(tiled - global_out)) > 1e-3
  aspp.reset_pooling_layer()
  np.testing.assert_array_equal(aspp(x, training=False).numpy(), global_out)
  with pytest.raises(ValueError):
    aspp.set_pool_size((3, None))


def test_dynamic_spatial_size_uses_global_mean():
  aspp = _built_aspp()
  x = _input()
  fn = tf.function(lambda t: aspp(t, training=False),
                   input_signature=[tf.TensorSpec([None, None, None, 6], tf.float32)])
  np.testing.assert_allclose(fn(x).numpy(), aspp(x, training=False).numpy(), atol=1e-5)


def test_dropout_only_in_training():
  aspp = _built_aspp()
  assert aspp.proj_dropout.rate == pytest.approx(0.1)
  x = _input()
  a, b = aspp(x, training=False).numpy(), aspp(x, training=False).numpy()
  np.testing.assert_array_equal(a, b)
  dropped = aspp(x, training=True).numpy()
  # Dropout zeroes some activations (the rest are rescaled by 1 / 0.9).
  assert 0 < np.mean(dropped == 0.0) < 0.5


def test_only_1x1_projection():
  aspp = ASPP(4, (), use_only_1x1_proj_conv=True, activation="gelu")
  x = _input()
  aspp(x)
  layer_checks.randomize_weights(aspp, 2)
  assert len(aspp.weights) == 5
  out = aspp(x, training=True).numpy()
  assert out.shape == (2, 7, 9, 4)
  np.testing.assert_allclose(aspp(x, training=False).numpy(),
                             _conv_bn_gelu(x.astype(np.float64), aspp.proj_conv_bn_act),
                             atol=3e-5, rtol=1e-5)


def test_get_config_round_trip():
  aspp = _built_aspp(pool_size=(3, 4))
  clone = ASPP.from_config(aspp.get_config())
  assert clone.get_config() == aspp.get_config()
  x = _input()
  clone(x)
  for a, b in zip(aspp.weights, clone.weights):
    assert a.shape == b.shape
    b.assign(a)
  np.testing.assert_array_equal(clone(x, training=False).numpy(), aspp(x, training=False).numpy())
