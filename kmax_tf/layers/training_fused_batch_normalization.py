"""Batch normalization that runs TensorFlow's fused kernel only in training steps.

At inference the layer computes the plain formula, (x - mean) * gamma /
sqrt(var + eps) + beta, with the same ops as DeepLab2's SyncBatchNormalization,
for two measured reasons (BENCHMARKS.md, "Kernel modes, side by side
with DeepLab2"):

- Grappler folds an inference-mode fused BN into the preceding convolution.
  With oneDNN that becomes a convolution with four per-channel post-ops, for
  which oneDNN has no AVX2 JIT kernel: on CPUs without AVX-512 the R50 forward
  pass gets about 9x slower. The plain formula is never folded that way, and
  is as fast as the fused one elsewhere.
- The folded convolution rounds differently from DeepLab2 (7e-5 of the largest
  mask logit at 641x641), enough to move a few panoptic pixels at near-ties;
  with the plain formula the outputs equal DeepLab2's bit for bit on the same
  kernels.

In training steps the fused kernel is the faster one with every kernel set we
measured (Eigen, oneDNN with and without AVX-512, cuDNN). Variables,
checkpoints and the config are those of `tf_keras.layers.BatchNormalization`.
"""
import tf_keras
from tf_keras.src.utils import control_flow_util


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class TrainingFusedBatchNormalization(tf_keras.layers.BatchNormalization):
  """`BatchNormalization` (fused=None or True) whose inference calls are not fused."""

  def call(self, inputs, training=None, mask=None):
    if not self.fused:
      return super().call(inputs, training=training, mask=mask)
    # Only a training value known to be True when the graph is built keeps the
    # fused kernel; a symbolic one gets the plain formula, which is also correct.
    if control_flow_util.constant_value(self._get_training_value(training)) is True:
      return super().call(inputs, training=training, mask=mask)
    self.fused = False
    try:
      return super().call(inputs, training=training, mask=mask)
    finally:
      self.fused = True
