"""Tests of PanopticSingleHead (Panoptic-DeepLab head, Cheng et al., CVPR 2020)."""
import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.checkpoints.deeplab2_mask_class_head_names import panoptic_single_head_variable_map
from kmax_tf.heads.panoptic_single_head import PanopticSingleHead


def _built(head, channels=32):
  head(tf.zeros([1, 9, 9, channels]))
  return head


@pytest.mark.parametrize("conv_type", ["depthwise_separable_conv", "standard_conv"])
def test_get_config_round_trip(conv_type):
  head = _built(PanopticSingleHead(16, 7, conv_type=conv_type, activation="gelu", name="h"))
  for v in head.weights:
    v.assign(tf.random.stateless_normal(v.shape, seed=[1, len(v.name)]))
  clone = PanopticSingleHead.from_config(head.get_config())
  _built(clone)
  assert [v.shape for v in clone.weights] == [v.shape for v in head.weights]
  clone.set_weights(head.get_weights())
  x = tf.random.stateless_normal([2, 9, 9, 32], seed=[3, 4])
  np.testing.assert_array_equal(head(x).numpy(), clone(x).numpy())
  assert head(x).shape == (2, 9, 9, 7)


def test_param_counts():
  # depthwise 5x5 + BN, pointwise + BN, 1x1 conv with bias (BN: gamma, beta, 2 moving stats).
  sep = _built(PanopticSingleHead(16, 7))
  assert sep.count_params() == 25 * 32 + 4 * 32 + 32 * 16 + 4 * 16 + 16 * 7 + 7
  std = _built(PanopticSingleHead(16, 7, conv_type="standard_conv"))
  assert std.count_params() == 25 * 32 * 16 + 4 * 16 + 16 * 7 + 7


def test_standard_conv_matches_reference_ops():
  head = _built(PanopticSingleHead(16, 7, conv_type="standard_conv", activation="relu"), 8)
  for v in head.weights:
    v.assign(tf.random.stateless_uniform(v.shape, seed=[5, len(v.name)], minval=0.5, maxval=1.5))
  x = tf.random.stateless_normal([1, 9, 9, 8], seed=[6, 7])
  conv, bn = head.conv_block[0].conv, head.conv_block[0].batch_norm
  # Stride-1 5x5 'same' convolution pads 2 on every side.
  y = tf.nn.conv2d(tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]]), conv.kernel, 1, "VALID")
  y = (y - bn.moving_mean) / tf.sqrt(bn.moving_variance + 1e-3) * bn.gamma + bn.beta
  y = tf.nn.relu(y)
  y = tf.nn.conv2d(y, head.final_conv.kernel, 1, "VALID") + head.final_conv.bias
  np.testing.assert_allclose(head(x, training=False).numpy(), y.numpy(), rtol=1e-5, atol=1e-5)


def test_variable_map_keys():
  sep = _built(PanopticSingleHead(16, 7))
  assert set(panoptic_single_head_variable_map(sep, "a", "b")) == {
      "a/_conv1_bn_act/_depthwise/_depthwise_conv/depthwise_kernel",
      *(f"a/_conv1_bn_act/_depthwise/_batch_norm/{n}" for n in
        ("gamma", "beta", "moving_mean", "moving_variance")),
      "a/_conv1_bn_act/_pointwise/_conv/kernel",
      *(f"a/_conv1_bn_act/_pointwise/_batch_norm/{n}" for n in
        ("gamma", "beta", "moving_mean", "moving_variance")),
      "b/kernel", "b/bias"}
  std = _built(PanopticSingleHead(16, 7, conv_type="standard_conv"))
  assert len(panoptic_single_head_variable_map(std, "a", "b")) == 7


def test_rejects_unknown_conv_type():
  with pytest.raises(ValueError):
    PanopticSingleHead(16, 7, conv_type="dilated")
