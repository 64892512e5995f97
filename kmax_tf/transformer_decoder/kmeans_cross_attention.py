"""k-means cross-attention: the cluster-center update of kMaX-DeepLab.

the kMaX-DeepLab paper (Sec. 3.2): cross-attention
from cluster centers to pixels, where the spatial softmax of standard
cross-attention is replaced by a *cluster-wise argmax*. Each pixel is assigned
to the cluster whose mask logit is largest (the k-means assignment step, a hard
one-hot assignment), and every cluster center is updated by summing the value
features of its pixels (the k-means update step).

The assignment logits come from the decoder layer's auxiliary prediction head;
this layer takes them as input. The assignment is a non-differentiable hard
argmax: gradients reach the centers only through the pixel values, not through
the assignment. DeepLab2 computes the same argmax assignment in training and in
inference; only the batch norms differ (batch statistics vs. moving averages).

Pipeline: value = BN(Conv1D(pixel_feature)); update = A^T value with
A = one_hot(argmax_N(logits)); update = BN(update); update = BN(Conv1D(update)).
The output projection's BN gamma starts at zero, so at initialisation the layer
adds nothing to the residual stream (as in "Accurate, Large Minibatch SGD",
Goyal et al., 2017).
"""
import tensorflow as tf
import tf_keras

from kmax_tf.layers import conv_bn_act
from kmax_tf.layers import normalization


def hard_assignment(mask_logits):
  """One-hot cluster assignment [B, H*W, N] from mask logits [B, H, W, N].

  Args:
    mask_logits: [B, H, W, N] float mask logits of the N clusters (mask slots).

  Returns:
    [B, H*W, N] one-hot assignment in the logits' dtype (1 at each pixel's
    argmax cluster), with gradients stopped.
  """
  num_clusters = mask_logits.shape[-1]
  assignment = tf.one_hot(tf.argmax(mask_logits, axis=-1), depth=num_clusters,
                          dtype=mask_logits.dtype)
  assignment = tf.stop_gradient(assignment)
  return tf.reshape(assignment, [tf.shape(mask_logits)[0], -1, num_clusters])


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class KMeansCrossAttention(tf_keras.layers.Layer):
  """Single-head k-means cross-attention (cluster-wise argmax).

  Call inputs: (pixel_feature [B, H*W, Cp], mask_logits [B, H, W, N]).
  Returns the update [B, N, output_channels] to add to the cluster centers.

  Args:
    value_channels: channels of the pixel value projection (Conv1D + BN).
    output_channels: channels of the returned center update; equals the
      cluster-center channels it is added to.
    kernel_stddev: stddev of the truncated-normal init of the value projection
      (1 / sqrt(fan in) by default).
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               value_channels: int = 256,
               output_channels: int = 256,
               kernel_stddev: float = 256 ** -0.5,
               **kwargs):
    super().__init__(**kwargs)
    self.value_channels = value_channels
    self.output_channels = output_channels
    self.kernel_stddev = kernel_stddev
    # Transformer-style init std 1/sqrt(fan_in) (SASA, ViT); BN follows, so it
    # is not critical.
    self.pixel_value = conv_bn_act.Conv1DBNAct(
        value_channels, activation=None,
        kernel_initializer={"class_name": "TruncatedNormal",
                            "config": {"stddev": kernel_stddev}},
        name="pixel_v_conv_bn")
    self.retrieved_value_batch_norm = normalization.batch_norm(
        "kmeans_memory_batch_norm_retrieved_value")
    self.output_projection = conv_bn_act.Conv1DBNAct(
        output_channels, activation=None, bn_gamma_initializer="zeros",
        name="kmeans_memory_conv3_bn")

  def call(self, inputs, training=None):
    pixel_feature, mask_logits = inputs
    value = self.pixel_value(pixel_feature, training=training)
    assignment = hard_assignment(mask_logits)
    centers = tf.einsum("blm,bld->bmd", assignment, value)
    centers = self.retrieved_value_batch_norm(centers, training=training)
    return self.output_projection(centers, training=training)

  def get_config(self):
    config = super().get_config()
    config.update(value_channels=self.value_channels, output_channels=self.output_channels,
                  kernel_stddev=self.kernel_stddev)
    return config
