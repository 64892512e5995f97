"""Tests for AxialResNet (the (axial-)ResNet-50 encoder layout of DeepLab2)."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from kmax_tf.layers import axial_block
from kmax_tf.pixel_encoders import axial_resnet


def _kinds(encoder):
  return [["axial" if isinstance(b, axial_block.AxialBlock) else "bottleneck" for b in g.blocks]
          for g in encoder.stages]


def test_endpoints_strides_and_activations():
  encoder = axial_resnet.AxialResNet(num_blocks=(1, 1, 1, 1))
  out = encoder(tf.random.normal([1, 65, 65, 3]), training=False)
  assert sorted(out) == sorted([f"stage{i}" for i in range(1, 6)] +
                               [f"res{i}" for i in range(1, 6)] + ["backbone_output"])
  expected = {1: (33, 64), 2: (17, 256), 3: (9, 512), 4: (5, 1024), 5: (3, 2048)}
  for i, (size, channels) in expected.items():
    assert out[f"stage{i}"].shape == (1, size, size, channels)
    np.testing.assert_array_equal(out[f"res{i}"], tf.nn.relu(out[f"stage{i}"]))
  assert out["backbone_output"] is out["res5"]


def test_axial_blocks_beyond_stride_16():
  encoder = axial_resnet.AxialResNet(stem_type="inception", use_axial_beyond_stride=16,
                                     activation="gelu")
  # Stage 4's first block reads stride 8, stage 5's first block reads stride 16.
  assert _kinds(encoder) == [["bottleneck"] * 3, ["bottleneck"] * 4,
                             ["bottleneck"] + ["axial"] * 5, ["axial"] * 3]
  assert [g.blocks[0].strides for g in encoder.stages] == [2, 2, 2, 2]
  assert [g.filters for g in encoder.stages] == [64, 128, 256, 512]
  assert _kinds(axial_resnet.AxialResNet()) == [["bottleneck"] * n for n in (3, 4, 6, 3)]


def test_linear_drop_path_schedule():
  encoder = axial_resnet.AxialResNet(drop_path_keep_prob=0.8)
  keep = [[b.drop_path_keep_prob for b in g.blocks] for g in encoder.stages]
  at16 = 1.0 - (1.0 - 0.8) * 3 / 4
  assert keep == [[1.0] * 3, [1.0] * 4, [1.0] + [at16] * 5, [at16, 0.8, 0.8]]
  assert at16 == pytest.approx(0.85)


def test_rejects_unknown_stem():
  with pytest.raises(ValueError):
    axial_resnet.AxialResNet(stem_type="resnet_beta")


def test_get_config_round_trip():
  encoder = axial_resnet.AxialResNet(stem_type="inception", use_axial_beyond_stride=16,
                                     activation="gelu", num_blocks=(1, 1, 2, 1),
                                     drop_path_keep_prob=0.9, name="axial_resnet50")
  x = tf.random.normal([1, 33, 33, 3])
  encoder(x)
  clone = tf_keras.layers.deserialize(tf_keras.layers.serialize(encoder))
  assert clone.get_config() == encoder.get_config()
  clone(x)
  clone.set_weights(encoder.get_weights())
  assert [w.name for w in clone.weights] == [w.name for w in encoder.weights]
  a, b = clone(x, training=False), encoder(x, training=False)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
