"""Adam with decoupled weight decay on selected variables: kMaX-DeepLab's optimizer.

kMaX-DeepLab trains with
AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR
2019) as DeepLab2 implements it: before each Adam step, every selected
variable shrinks by `learning_rate * weight_decay * variable`, where
learning_rate is the schedule's value at the current step (no bias correction);
the Adam step itself is Keras' legacy Adam.

Built on the legacy Keras optimizer on purpose: its update is one fused
`ResourceApplyAdam` kernel per variable, which traces and runs several times
faster than the per-variable Python update of the newer optimizers for a model
with ~1400 variables (two optimizers x ~700), and its slots restore lazily from
checkpoints.

Why not tf-models-official's `official.modeling.optimization.legacy_adamw.
AdamWeightDecay` (DeepLab2's own AdamWeightDecay is the same class): with
DeepLab2's arguments (include `.*(kernel|weight):0$`, exclude `.*$`,
gradient_clip_norm=0) it gives bitwise the same weights as this class after 1,
5 and 10 steps in a graph (its default gradient_clip_norm=1.0 does not: up to
5e-4 apart after one step). But
  - it decides by variable name, and under MirroredStrategy the second
    replica's component of `conv/kernel` is named `conv/kernel/replica_1:0`,
    which that pattern misses: with 2 replicas only replica 0 decays and the
    replicas drift apart (kernel 1.43 vs 1.70 after 3 steps in the test). We
    decide by the variables themselves (DeepLab2 checkpoint keys, see
    optimizer_builder), whatever our Keras names are;
  - its decay does not wait for the gradient (see `_decay`; 0.31-0.40 GB more
    at COCO R50's memory peak, BENCHMARKS.md).
tests/test_model_garden_equivalents.py checks these facts.
"""
from typing import Iterable

import tensorflow as tf
import tf_keras


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class AdamWeightDecay(tf_keras.optimizers.legacy.Adam):
  """Legacy Adam + decoupled weight decay on `decayed_variables` only."""

  def __init__(self,
               learning_rate=1e-3,
               weight_decay: float = 0.0,
               decayed_variables: Iterable[tf.Variable] = (),
               beta_1: float = 0.9,
               beta_2: float = 0.999,
               epsilon: float = 1e-7,
               name: str = "AdamWeightDecay",
               **kwargs):
    super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                     epsilon=epsilon, name=name, **kwargs)
    self.weight_decay = float(weight_decay)
    self._decayed = {v.ref() for v in decayed_variables}
    # Under a tf.distribute strategy the update functions get each replica's
    # component, not the distributed variable the caller listed; apply_gradients
    # records the components of the decayed ones here.
    self._decayed_components = set()

  def apply_gradients(self, grads_and_vars, name=None, experimental_aggregate_gradients=True):
    grads_and_vars = list(grads_and_vars)
    strategy = tf.distribute.get_strategy()
    for _, variable in grads_and_vars:
      if variable.ref() in self._decayed:
        self._decayed_components.update(
            component.ref() for component in strategy.experimental_local_results(variable))
    return super().apply_gradients(grads_and_vars, name, experimental_aggregate_gradients)

  def decays(self, variable) -> bool:
    """Whether `variable` (or, in an update, a replica's component of it) decays."""
    return self.weight_decay > 0 and (variable.ref() in self._decayed
                                       or variable.ref() in self._decayed_components)

  def _decay(self, grad, variable, apply_state):
    """`variable -= lr * weight_decay * variable`, once `grad` exists."""
    if not self.decays(variable):
      return tf.no_op()
    device, dtype = variable.device, variable.dtype.base_dtype
    coefficients = ((apply_state or {}).get((device, dtype))
                    or self._fallback_apply_state(device, dtype))
    # The decay does not read the gradient, so without this dependency the
    # executor runs it as soon as the forward pass has read the variable, at the
    # start of the step. That read still holds the variable's buffer for the
    # backward pass, so the assignment copies the variable (copy-on-write) and
    # both copies stay alive through the forward and backward passes: 330 MB at
    # COCO R50's memory peak. Once the gradient exists, the backward pass has
    # reached the variable's layer, and the read is released about then.
    with tf.control_dependencies([grad]):
      return variable.assign_sub(
          coefficients["lr_t"] * tf.cast(self.weight_decay, dtype) * variable,
          use_locking=self._use_locking)

  def _resource_apply_dense(self, grad, var, apply_state=None):
    with tf.control_dependencies([self._decay(grad, var, apply_state)]):
      return super()._resource_apply_dense(grad, var, apply_state)

  def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
    with tf.control_dependencies([self._decay(grad, var, apply_state)]):
      return super()._resource_apply_sparse(grad, var, indices, apply_state)

  def get_config(self):
    config = super().get_config()
    # The decayed set holds variables, which a config cannot; it is rebuilt by
    # kmax_tf.training.optimizer_builder from the model.
    config.update(weight_decay=self.weight_decay)
    return config
