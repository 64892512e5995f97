"""Tests for BlockGroup (a stage of bottleneck / axial residual blocks)."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from kmax_tf.layers import axial_block
from kmax_tf.layers import block_group
from kmax_tf.layers import bottleneck_block


def test_mixed_block_types_and_first_block_stride():
  group = block_group.BlockGroup(8, 3, block_type=("bottleneck", "axial", "axial"), strides=2,
                                 activation="gelu", drop_path_keep_prob=(1.0, 0.9, 0.8),
                                 num_heads=2, name="stage4")
  out = group(tf.zeros([1, 9, 9, 16]), training=False)
  assert out.shape == (1, 5, 5, 32)
  kinds = [type(b) for b in group.blocks]
  assert kinds == [bottleneck_block.BottleneckBlock, axial_block.AxialBlock,
                   axial_block.AxialBlock]
  assert [b.strides for b in group.blocks] == [2, 1, 1]
  assert [b.drop_path_keep_prob for b in group.blocks] == [1.0, 0.9, 0.8]
  assert [b.name for b in group.blocks] == ["block1", "block2", "block3"]
  assert group.blocks[0].shortcut is not None and group.blocks[1].shortcut is None


def test_kmax_pixel_decoder_stage_configurations():
  # DeepLab2's kMaX pixel decoder: axial at strides 32/16, dilated bottlenecks at 8/4.
  axial = block_group.BlockGroup(16, 2, block_type="axial", activation="gelu", num_heads=2)
  bottleneck = block_group.BlockGroup(8, 1, block_type="bottleneck", dilation_rate=2,
                                      activation="gelu")
  assert axial(tf.zeros([1, 3, 3, 64])).shape == (1, 3, 3, 64)
  assert bottleneck(tf.zeros([1, 9, 9, 16])).shape == (1, 9, 9, 32)
  assert bottleneck.blocks[0].conv2_bn_act.dilation_rate == 2
  assert all(b.activation == "gelu" and b.drop_path_keep_prob == 1.0
             for b in axial.blocks + bottleneck.blocks)


def test_blocks_applied_in_sequence():
  group = block_group.BlockGroup(4, 2, strides=2)
  x = tf.random.normal([1, 6, 6, 8])
  group(x)
  rng = np.random.RandomState(0)
  for v in group.weights:
    v.assign((rng.uniform(0.5, 1.5, v.shape) if "variance" in v.name or "gamma" in v.name
              else 0.2 * rng.randn(*v.shape)).astype(np.float32))
  expected = group.blocks[1](group.blocks[0](x, training=False), training=False)
  np.testing.assert_array_equal(group(x, training=False), expected)


def test_rejects_bad_arguments():
  with pytest.raises(ValueError):
    block_group.BlockGroup(4, 2, block_type="global")
  with pytest.raises(ValueError):
    block_group.BlockGroup(4, 2, block_type=("axial",))
  with pytest.raises(ValueError):
    block_group.BlockGroup(4, 2, drop_path_keep_prob=(1.0, 0.9, 0.8))


@pytest.mark.parametrize("block_type,keep", [("axial", 0.9), (("bottleneck", "axial"), (1.0, 0.8))])
def test_get_config_round_trip(block_type, keep):
  group = block_group.BlockGroup(4, 2, block_type=block_type, strides=2, dilation_rate=1,
                                 activation="gelu", drop_path_keep_prob=keep, num_heads=2,
                                 query_shape=33, name="stage5")
  x = tf.random.normal([1, 6, 6, 8])
  group(x)
  clone = tf_keras.layers.deserialize(tf_keras.layers.serialize(group))
  assert clone.get_config() == group.get_config()
  clone(x)
  clone.set_weights(group.get_weights())
  assert [w.shape for w in clone.weights] == [w.shape for w in group.weights]
  assert [w.name for w in clone.weights] == [w.name for w in group.weights]
  np.testing.assert_array_equal(clone(x, training=False), group(x, training=False))
