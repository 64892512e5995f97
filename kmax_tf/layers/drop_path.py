"""Drop path (stochastic depth; Huang et al., ECCV 2016) as used by kMaX-DeepLab.

Keeps a whole residual branch per example with probability `keep_prob` during
training and rescales by 1/keep_prob, so inference is the identity.
"""
import tensorflow as tf
import tf_keras


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class DropPath(tf_keras.layers.Layer):
  """Zeroes a whole residual branch per example in training, rescaled by 1 / keep_prob.

  Args:
    keep_prob: probability in (0, 1] of keeping each example's branch; 1.0
      makes the layer the identity.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self, keep_prob: float = 1.0, **kwargs):
    super().__init__(**kwargs)
    if not 0.0 < keep_prob <= 1.0:
      raise ValueError(f"{self.name}: drop-path keep_prob must be in (0, 1], got {keep_prob}.")
    self.keep_prob = keep_prob

  def call(self, inputs, training=None):
    if not training or self.keep_prob == 1.0:
      return inputs
    shape = tf.concat([tf.shape(inputs)[:1], tf.ones([tf.rank(inputs) - 1], tf.int32)], 0)
    mask = tf.floor(self.keep_prob + tf.random.uniform(shape, dtype=inputs.dtype))
    return inputs * mask / self.keep_prob

  def get_config(self):
    config = super().get_config()
    config.update(keep_prob=self.keep_prob)
    return config
