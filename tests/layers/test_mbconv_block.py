"""MBConvBlock and its squeeze-and-excitation gate (MOAT, Yang et al., ICLR 2023)."""
import numpy as np
import scipy.special
import tensorflow as tf

from kmax_tf.layers.mbconv_block import MBConvBlock
from kmax_tf.layers.squeeze_and_excitation import SqueezeAndExcitation
from kmax_tf.testing import layer_checks


def _bn(x, bn):
  return ((x - bn.moving_mean.numpy()) / np.sqrt(bn.moving_variance.numpy() + 1e-3)
          * bn.gamma.numpy() + bn.beta.numpy())


def _gelu(x):
  return 0.5 * x * (1.0 + scipy.special.erf(x / np.sqrt(2.0)))


def _conv1x1(x, conv):
  y = np.einsum("bhwc,cd->bhwd", x, conv.kernel.numpy()[0, 0])
  return y + conv.bias.numpy() if conv.use_bias else y


def test_squeeze_and_excitation_matches_numpy():
  se = SqueezeAndExcitation(3, 8)
  x = tf.random.stateless_normal([2, 5, 6, 8], seed=[1, 2])
  se(x)
  layer_checks.randomize_weights(se, 0)
  xn = x.numpy().astype(np.float64)
  s = _conv1x1(xn.mean((1, 2), keepdims=True), se.reduce_conv)
  s = _conv1x1(s * scipy.special.expit(s), se.expand_conv)
  np.testing.assert_allclose(se(x).numpy(), scipy.special.expit(s) * xn, rtol=1e-5, atol=1e-5)


def test_stride1_block_matches_numpy():
  """Stride 1, same width: identity shortcut; the 3x3 depthwise conv in NumPy."""
  block = MBConvBlock(8, stride=1, expansion_rate=2)
  x = tf.random.stateless_normal([1, 5, 6, 8], seed=[3, 4])
  block(x)
  layer_checks.randomize_weights(block, 1)
  assert block.shortcut_conv is None and block.shortcut_pool is None
  xn = x.numpy().astype(np.float64)
  y = _gelu(_bn(_conv1x1(_bn(xn, block.pre_norm), block.expand_conv), block.expand_norm))
  k = block.depthwise_conv.depthwise_kernel.numpy()[:, :, :, 0]
  yp = np.pad(y, [[0, 0], [1, 1], [1, 1], [0, 0]])
  d = sum(yp[:, i:i + 5, j:j + 6] * k[i, j] for i in range(3) for j in range(3))
  y = _gelu(_bn(d, block.depthwise_norm))
  s = _conv1x1(y.mean((1, 2), keepdims=True), block.se.reduce_conv)
  s = _conv1x1(s * scipy.special.expit(s), block.se.expand_conv)
  y = _conv1x1(scipy.special.expit(s) * y, block.shrink_conv)
  np.testing.assert_allclose(block(x, training=False).numpy(), xn + y, rtol=1e-4, atol=1e-4)


def test_strided_block_shortcut_is_same_avg_pool_then_conv():
  block = MBConvBlock(12, stride=2, pool_size=3, se_ratio=None)
  x = tf.random.stateless_normal([1, 7, 7, 8], seed=[5, 6])
  out = block(x)
  assert out.shape == (1, 4, 4, 12)
  assert block.se is None and block.shortcut_conv is not None
  # 'same' average pooling averages over the valid pixels only: corner = mean of 2x2.
  pooled = block.shortcut_pool(x).numpy()
  np.testing.assert_allclose(pooled[0, 0, 0], x.numpy()[0, :2, :2].mean((0, 1)), rtol=1e-5)


def test_get_config_round_trip():
  for layer in (MBConvBlock(8, stride=2, se_ratio=None, drop_path_keep_prob=0.9, name="b"),
                SqueezeAndExcitation(2, 8, name="se")):
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
