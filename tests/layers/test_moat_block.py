"""MOATBlock (Yang et al., ICLR 2023): MBConv (no SE) then pre-LN attention."""
import numpy as np
import tensorflow as tf

from kmax_tf.layers.moat_block import MOATBlock


def test_block_is_mbconv_then_attention_residual():
  block = MOATBlock(16, stride=2, head_size=8, position_embedding_size=2)
  x = tf.random.stateless_normal([1, 7, 7, 8], seed=[1, 2])
  out = block(x, training=False)
  assert out.shape == (1, 4, 4, 16)
  assert block.mbconv.se is None and block.mbconv.stride == 2
  y = block.mbconv(x, training=False)
  expected = y + block.attention(block.attention_norm(y))
  np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)


def test_drop_path_only_in_training():
  block = MOATBlock(16, head_size=8, drop_path_keep_prob=0.5)
  x = tf.random.stateless_normal([8, 5, 5, 16], seed=[3, 4])
  a, b = block(x, training=False), block(x, training=False)
  np.testing.assert_array_equal(a.numpy(), b.numpy())
  tf.random.set_seed(0)
  assert not np.allclose(block(x, training=True).numpy(), a.numpy())


def test_get_config_round_trip():
  block = MOATBlock(16, stride=2, head_size=8, position_embedding_size=7, pool_size=2,
                    drop_path_keep_prob=0.8, name="m")
  config = block.get_config()
  assert MOATBlock.from_config(config).get_config() == config
