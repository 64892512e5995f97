"""Batch-normalization factory with DeepLab2's constants.

DeepLab2 builds every kMaX BN as SyncBatchNormalization with the config's
solver_options.batchnorm_momentum / batchnorm_epsilon (defaults 0.99, 1e-3),
except MOAT's, which always uses Keras' defaults (the same 0.99, 1e-3); the
model builder sets the config's constants with `batch_norm_constants`. We
build TrainingFusedBatchNormalization by default (fused kernel in training
steps unless `kmax_tf.kernel_choices` says otherwise, the plain formula at
inference; the same variables either way), and synchronized
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
# DeepLab2's MOAT builds its BN with Keras' defaults whatever the config says.
KERAS_DEFAULT_CONSTANTS = {"momentum": 0.99, "epsilon": 1e-3}

_STATE = threading.local()


@contextlib.contextmanager
def batch_norm_constants(momentum: float, epsilon: float):
  """Within this block, batch_norm() without explicit constants uses these.

  Args:
    momentum: moving-average momentum of the BN statistics (e.g. 0.99).
    epsilon: variance epsilon (e.g. 1e-3).
  """
  previous = getattr(_STATE, "constants", None)
  _STATE.constants = (float(momentum), float(epsilon))
  try:
    yield
  finally:
    _STATE.constants = previous


@contextlib.contextmanager
def synchronized_batch_norm(enabled: bool):
  """Within this block, batch_norm() builds synchronized (cross-replica) BN layers.

  Args:
    enabled: True for cross-replica statistics; False restores the per-replica
      (fused) layers within the block.
  """
  previous = getattr(_STATE, "synchronized", False)
  _STATE.synchronized = bool(enabled)
  try:
    yield
  finally:
    _STATE.synchronized = previous


def batch_norm(name, axis=-1, gamma_initializer="ones", synchronized=None,
               momentum=None, epsilon=None):
  """One BN layer; arguments left None are read from the contexts above.

  Args:
    name: layer name (checkpoint names depend on it).
    axis: the channel axis.
    gamma_initializer: initializer of the scale.
    synchronized: cross-replica statistics; None reads `synchronized_batch_norm`.
    momentum: moving-average momentum; None reads `batch_norm_constants`
      (default BN_MOMENTUM).
    epsilon: variance epsilon; None reads `batch_norm_constants` (default
      BN_EPSILON).
  """
  if synchronized is None:
    synchronized = getattr(_STATE, "synchronized", False)
  context_momentum, context_epsilon = getattr(_STATE, "constants", None) or (BN_MOMENTUM,
                                                                             BN_EPSILON)
  momentum = context_momentum if momentum is None else momentum
  epsilon = context_epsilon if epsilon is None else epsilon
  common = dict(axis=axis, momentum=momentum, epsilon=epsilon,
                gamma_initializer=gamma_initializer, name=name)
  if synchronized or not kernel_choices.kernel_choices().fused_batch_norm:
    return tf_keras.layers.BatchNormalization(
        synchronized=synchronized, fused=False, **common)
  # fused=None lets tf_keras fuse where it can (4-D inputs).
  return training_fused_batch_normalization.TrainingFusedBatchNormalization(
      fused=None, **common)
