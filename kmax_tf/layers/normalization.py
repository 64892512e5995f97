"""Batch-normalization factory with DeepLab2's constants.

DeepLab2 builds every kMaX BN as SyncBatchNormalization (momentum 0.99,
epsilon 1e-3). We build TrainingFusedBatchNormalization by default (fused
kernel in training steps unless `kmax_tf.kernel_choices` says otherwise, the
plain formula at inference; the same variables either way), and synchronized
BN only while a model is constructed inside
`synchronized_batch_norm(True)`, which the trainer does whenever there is more
than one replica, so batch statistics are reduced across replicas there.
"""
import contextlib
import threading

import tf_keras

from kmax_tf import kernel_choices
from kmax_tf.layers import training_fused_batch_normalization

BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3

_STATE = threading.local()


@contextlib.contextmanager
def synchronized_batch_norm(enabled: bool):
  """Within this block, batch_norm() builds synchronized (cross-replica) BN layers."""
  previous = getattr(_STATE, "synchronized", False)
  _STATE.synchronized = bool(enabled)
  try:
    yield
  finally:
    _STATE.synchronized = previous


def batch_norm(name, axis=-1, gamma_initializer="ones", synchronized=None):
  """One BN layer with DeepLab2's constants; `synchronized=None` reads the context."""
  if synchronized is None:
    synchronized = getattr(_STATE, "synchronized", False)
  common = dict(axis=axis, momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                gamma_initializer=gamma_initializer, name=name)
  if synchronized or not kernel_choices.kernel_choices().fused_batch_norm:
    return tf_keras.layers.BatchNormalization(
        synchronized=synchronized, fused=False, **common)
  # fused=None lets tf_keras fuse where it can (4-D inputs).
  return training_fused_batch_normalization.TrainingFusedBatchNormalization(
      fused=None, **common)
