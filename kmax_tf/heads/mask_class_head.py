"""Mask and class prediction from pixel features and cluster centers.

The MaX-DeepLab prediction head (Wang et al., "MaX-DeepLab: End-to-End Panoptic
Segmentation with Mask Transformers", CVPR 2021) as kMaX-DeepLab uses it, without
the auxiliary semantic
branch:

  pixel embedding  e = l2_normalize(BN(PanopticSingleHead(feature_panoptic)))
  mask kernel      k = BN(Conv1D(transformer_mask_feature))
  mask logits      BN_extra_axis(e . k)   [B, H, W, N]
  class logits     Conv1D(transformer_class_feature) + void prior  [B, N, C]

kMaX-DeepLab uses this head twice: as the final predictor and, inside each
decoder layer, as the auxiliary predictor whose mask logits give the k-means
pixel-to-cluster assignment.

The product of two learned embeddings is sensitive to their scales, so a BN is
applied to the pixel features, to the mask kernels, and to the logits. The
logit BN normalises over an added trailing axis of size 1: a single gamma/beta
shared by all mask slots, so no slot gets its own bias.

The class logits get a constant prior towards the last (void) class, as in
Section 3.3 of Focal Loss (Lin et al., ICCV 2017): at initialisation the void
probability is `void_prior_prob`. It is a fixed offset, not a weight, and it is
part of every forward pass (checkpoints were trained with it).
"""
import math

import tensorflow as tf
import tf_keras

from kmax_tf import outputs
from kmax_tf.heads import panoptic_single_head
from kmax_tf.layers import conv_bn_act
from kmax_tf.layers import normalization

VOID_PRIOR_PROB = 0.9


def void_prior_bias(num_classes: int, void_prior_prob: float = VOID_PRIOR_PROB):
  """Per-class logit offsets: 0 for real classes, log((C-1) p / (1-p)) for void.

  Args:
    num_classes: C, class channels including void (the last one).
    void_prior_prob: void probability (0..1) the offsets give when all logits
      are otherwise equal.

  Returns:
    A list of C floats to add to the class logits.
  """
  bias = [0.0] * num_classes
  bias[-1] = math.log((num_classes - 1) * void_prior_prob / (1.0 - void_prior_prob))
  return bias


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class MaskClassHead(tf_keras.layers.Layer):
  """Pixel-embedding, mask and class heads of kMaX-DeepLab.

  Reads `feature_panoptic` [B, H, W, Cp], `transformer_class_feature` and
  `transformer_mask_feature` [B, N, Cm]; returns a dict with
  `pixel_space_mask_logits` [B, H, W, N], `transformer_class_logits`
  [B, N, num_classes] and `pixel_space_normalized_feature`
  [B, H, W, mask_channels]. An `auxiliary_outputs` entry of the input is passed
  through unchanged, so the final predictor's result carries the decoder's
  per-layer predictions as DeepLab2's does.

  `num_classes` counts the void class (the last channel): COCO 134 (void is one
  of the 134 semantic channels), Cityscapes 19 + 1.

  Args:
    num_classes: class-logit channels including void (>= 2).
    head_channels: channels of the pixel head's 5x5 conv block.
    mask_channels: channels of the pixel embedding and of the mask kernels.
    conv_type: 'depthwise_separable_conv' or 'standard_conv' for the pixel
      head's conv block.
    activation: activation name (see kmax_tf.layers.activations).
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               num_classes: int,
               head_channels: int = 256,
               mask_channels: int = 128,
               conv_type: str = "depthwise_separable_conv",
               activation: str = "gelu",
               **kwargs):
    super().__init__(**kwargs)
    if num_classes < 2:
      raise ValueError(f"{self.name}: num_classes includes void and must be >= 2.")
    self.num_classes = num_classes
    self.head_channels = head_channels
    self.mask_channels = mask_channels
    self.conv_type = conv_type
    self.activation = activation

    self.pixel_space_head = panoptic_single_head.PanopticSingleHead(
        head_channels, mask_channels, conv_type=conv_type, activation=activation,
        name="pixel_space_head")
    self.transformer_mask_head = conv_bn_act.Conv1DBNAct(
        mask_channels, use_bias=False, use_bn=True, activation=None,
        name="transformer_mask_head")
    # Class logits are a final output: conv bias instead of BN, small init.
    self.transformer_class_head = conv_bn_act.Conv1DBNAct(
        num_classes, use_bias=True, use_bn=False, activation=None,
        kernel_initializer={"class_name": "TruncatedNormal", "config": {"stddev": 0.01}},
        name="transformer_class_head")
    self.pixel_space_feature_batch_norm = normalization.batch_norm(
        "pixel_space_feature_batch_norm")
    # gamma 0.1: low initial temperature of the mask logits.
    self.pixel_space_mask_batch_norm = normalization.batch_norm(
        "pixel_space_mask_batch_norm",
        gamma_initializer=tf_keras.initializers.Constant(0.1))

  def call(self, features, training=None):
    pixel_feature = self.pixel_space_head(features[outputs.FEATURE_PANOPTIC], training=training)
    pixel_feature = self.pixel_space_feature_batch_norm(pixel_feature, training=training)
    pixel_feature = tf.math.l2_normalize(pixel_feature, axis=-1)

    class_logits = self.transformer_class_head(
        features[outputs.TRANSFORMER_CLASS_FEATURE], training=training)
    class_logits = class_logits + tf.constant(void_prior_bias(self.num_classes), class_logits.dtype)

    mask_kernel = self.transformer_mask_head(
        features[outputs.TRANSFORMER_MASK_FEATURE], training=training)
    mask_logits = tf.einsum("bhwd,bid->bhwi", pixel_feature, mask_kernel)
    # One BN channel over all logits. A rank-3 view [B, H*W*N, 1] gives the same
    # statistics as DeepLab2's [B, H, W, N, 1] and keeps tf_keras off its fused
    # kernel, whose one-pass batch variance over these ~0.5M values drifts by
    # ~1e-4 relative from DeepLab2's two-pass moments in training.
    logits_shape = tf.shape(mask_logits)
    mask_logits = self.pixel_space_mask_batch_norm(
        tf.reshape(mask_logits, [logits_shape[0], -1, 1]), training=training)
    mask_logits = tf.reshape(mask_logits, logits_shape)

    results = {
        outputs.PIXEL_SPACE_NORMALIZED_FEATURE: pixel_feature,
        outputs.TRANSFORMER_CLASS_LOGITS: class_logits,
        outputs.PIXEL_SPACE_MASK_LOGITS: mask_logits,
    }
    if outputs.AUXILIARY_OUTPUTS in features:
      results[outputs.AUXILIARY_OUTPUTS] = features[outputs.AUXILIARY_OUTPUTS]
    return results

  def get_config(self):
    config = super().get_config()
    config.update(num_classes=self.num_classes, head_channels=self.head_channels,
                  mask_channels=self.mask_channels, conv_type=self.conv_type,
                  activation=self.activation)
    return config
