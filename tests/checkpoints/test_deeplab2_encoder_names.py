"""Tests for the DeepLab2 checkpoint-key rules of the (axial-)ResNet encoders."""
import pytest
import tensorflow as tf

from kmax_tf.checkpoints import deeplab2_encoder_names
from kmax_tf.layers import block_group
from kmax_tf.pixel_encoders import axial_resnet


def test_requires_built_encoder():
  with pytest.raises(ValueError):
    deeplab2_encoder_names.deeplab2_variable_map(axial_resnet.AxialResNet())


def test_small_axial_encoder_keys():
  encoder = axial_resnet.AxialResNet(stem_type="inception", use_axial_beyond_stride=16,
                                     activation="gelu", num_blocks=(1, 1, 2, 1))
  encoder(tf.zeros([1, 33, 33, 3]))
  mapping = deeplab2_encoder_names.deeplab2_variable_map(encoder)
  assert len(mapping) == len(encoder.weights)
  assert mapping["_stem/_conv1_bn_act/_conv/kernel"] is encoder.stem.conv1_bn_act.conv.kernel
  assert "_stage2/_block1/_shortcut/_batch_norm/moving_variance" in mapping
  assert "_stage4/_block1/_conv2_bn_act/_conv/kernel" in mapping       # stride-8 bottleneck
  attention = "_stage4/_block2/_attention/_height_axis"
  assert mapping[f"{attention}/qkv_kernel"] is (
      encoder.stages[2].blocks[1].attention.height_axis.qkv_kernel)
  assert f"{attention}/_value_rpe/embeddings" in mapping
  assert f"{attention}/_batch_norm_similarity/gamma" in mapping
  assert "_stage4/_block2/_shortcut/_conv/kernel" not in mapping       # identity shortcut


def test_block_group_map_prefix():
  group = block_group.BlockGroup(4, 2, block_type="axial", num_heads=2)
  group(tf.zeros([1, 3, 3, 8]))
  mapping = deeplab2_encoder_names.block_group_variable_map("_stages/0", group)
  assert len(mapping) == len(group.weights)
  assert all(k.startswith(("_stages/0/_block1/", "_stages/0/_block2/")) for k in mapping)
