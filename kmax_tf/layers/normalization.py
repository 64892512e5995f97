"""Batch-normalization factory with DeepLab2's constants.

DeepLab2 builds every kMaX BN as SyncBatchNormalization (momentum 0.99,
epsilon 1e-3). `synchronized=True` in tf_keras reduces the batch statistics
across replicas when training under tf.distribute and is a plain BN otherwise,
so one model definition serves one device and many.
"""
import tf_keras

BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3


def batch_norm(name, axis=-1, gamma_initializer="ones", synchronized=True):
  return tf_keras.layers.BatchNormalization(
      axis=axis, momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
      gamma_initializer=gamma_initializer, synchronized=synchronized, name=name)
