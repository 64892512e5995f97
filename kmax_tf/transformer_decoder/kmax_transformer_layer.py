"""One kMaX-DeepLab transformer decoder layer.

the kMaX-DeepLab paper (Sec. 3.2-3.3). The layer
updates the cluster centers C [B, N, channels] from a pixel feature map
F [B, H, W, Cf] of one decoder stage:

  c = act(BN(Conv1D(C)))                 cluster bottleneck
  p = act(BN(Conv1D(act(F))))            pixel bottleneck (F arrives un-activated)
  aux = MaskClassHead(p, c)              auxiliary prediction; its mask logits
                                         give the k-means assignment
  C' = C + DropPath(KMeansCrossAttention(p, aux mask logits))
         + DropPath(ClusterSelfAttention(c))
  C' = act(C')
  C' = act(C' + DropPath(FFN(C')))       FFN: Conv1D+BN+act, Conv1D+BN (gamma 0)

The k-means update and the self-attention are parallel residual branches: both
read the same bottleneck c of the layer input, as in the memory path of
MaX-DeepLab's dual-path transformer (Wang et al., CVPR 2021). Each branch has its
own drop-path draw (stochastic depth, Huang et al., ECCV 2016). The pixel
features themselves are not updated.
"""
import tensorflow as tf
import tf_keras

from kmax_tf import outputs
from kmax_tf.heads import mask_class_head
from kmax_tf.layers import activations
from kmax_tf.layers import conv_bn_act
from kmax_tf.layers import drop_path
from kmax_tf.transformer_decoder import cluster_self_attention
from kmax_tf.transformer_decoder import kmeans_cross_attention


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class KMaXTransformerLayer(tf_keras.layers.Layer):
  """k-means cross-attention + self-attention + FFN on cluster centers.

  Call inputs: (pixel_feature [B, H, W, Cf], cluster_centers [B, N, channels]).
  Returns (cluster_centers [B, N, channels], auxiliary prediction dict with
  `pixel_space_mask_logits` [B, H, W, N], `transformer_class_logits`
  [B, N, num_classes], `pixel_space_normalized_feature` [B, H, W, mask_channels]).

  Args:
    num_classes: class-logit channels of the auxiliary head, void included
      (void is the last channel).
    channels: channels of the cluster centers (input and output).
    bottleneck_channels: channels of the pixel and cluster bottlenecks that the
      attention branches and the auxiliary head read.
    key_channels: total query/key channels of the self-attention.
    value_channels: total value channels of both attention branches.
    num_heads: self-attention heads.
    ffn_channels: hidden channels of the feed-forward network.
    drop_path_keep_prob: probability (0, 1] of keeping each residual branch per
      example in training (stochastic depth); 1.0 disables drop path.
    activation: activation name (see kmax_tf.layers.activations).
    head_channels: channels of the auxiliary head's 5x5 conv block.
    mask_channels: channels of the auxiliary head's pixel embedding and mask
      kernels.
    head_conv_type: 'depthwise_separable_conv' or 'standard_conv' for the
      auxiliary head's conv block.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               num_classes: int,
               channels: int = 256,
               bottleneck_channels: int = 256,
               key_channels: int = 128,
               value_channels: int = 256,
               num_heads: int = 8,
               ffn_channels: int = 2048,
               drop_path_keep_prob: float = 1.0,
               activation: str = "gelu",
               head_channels: int = 256,
               mask_channels: int = 128,
               head_conv_type: str = "depthwise_separable_conv",
               **kwargs):
    super().__init__(**kwargs)
    self.num_classes = num_classes
    self.channels = channels
    self.bottleneck_channels = bottleneck_channels
    self.key_channels = key_channels
    self.value_channels = value_channels
    self.num_heads = num_heads
    self.ffn_channels = ffn_channels
    self.drop_path_keep_prob = drop_path_keep_prob
    self.activation = activation
    self.head_channels = head_channels
    self.mask_channels = mask_channels
    self.head_conv_type = head_conv_type

    attention_init_std = bottleneck_channels ** -0.5
    self.cluster_projection = conv_bn_act.Conv1DBNAct(
        bottleneck_channels, activation=activation, name="memory_conv1_bn_act")
    self.pixel_projection = conv_bn_act.Conv1DBNAct(
        bottleneck_channels, activation=activation, name="pixel_conv1_bn_act")
    self.auxiliary_predictor = mask_class_head.MaskClassHead(
        num_classes, head_channels=head_channels, mask_channels=mask_channels,
        conv_type=head_conv_type, activation=activation,
        name="auxiliary_clustering_predictor")
    self.kmeans_cross_attention = kmeans_cross_attention.KMeansCrossAttention(
        value_channels=value_channels, output_channels=channels,
        kernel_stddev=attention_init_std, name="kmeans_cross_attention")
    self.self_attention = cluster_self_attention.ClusterSelfAttention(
        key_channels=key_channels, value_channels=value_channels,
        output_channels=channels, num_heads=num_heads, activation=activation,
        kernel_stddev=attention_init_std, name="self_attention")
    self.ffn_expand = conv_bn_act.Conv1DBNAct(
        ffn_channels, activation=activation, name="memory_ffn_conv1_bn_act")
    self.ffn_project = conv_bn_act.Conv1DBNAct(
        channels, activation=None, bn_gamma_initializer="zeros",
        name="memory_ffn_conv2_bn")
    self.kmeans_drop_path = drop_path.DropPath(drop_path_keep_prob, name="kmeans_drop_path")
    self.self_attention_drop_path = drop_path.DropPath(
        drop_path_keep_prob, name="self_attention_drop_path")
    self.ffn_drop_path = drop_path.DropPath(drop_path_keep_prob, name="ffn_drop_path")
    self._activation_fn = activations.get_activation(activation)

  def call(self, inputs, training=None):
    pixel_feature, centers = inputs
    shape = tf.shape(pixel_feature)
    height, width = shape[1], shape[2]
    flat_pixels = tf.reshape(pixel_feature, [shape[0], height * width, pixel_feature.shape[-1]])

    cluster_bottleneck = self.cluster_projection(centers, training=training)
    pixel_bottleneck = self.pixel_projection(self._activation_fn(flat_pixels),
                                             training=training)

    auxiliary = self.auxiliary_predictor({
        outputs.FEATURE_PANOPTIC: tf.reshape(
            pixel_bottleneck, [shape[0], height, width, self.bottleneck_channels]),
        outputs.TRANSFORMER_CLASS_FEATURE: cluster_bottleneck,
        outputs.TRANSFORMER_MASK_FEATURE: cluster_bottleneck,
    }, training=training)

    kmeans_update = self.kmeans_cross_attention(
        (pixel_bottleneck, auxiliary[outputs.PIXEL_SPACE_MASK_LOGITS]), training=training)
    centers_out = centers + self.kmeans_drop_path(kmeans_update, training=training)
    attention_update = self.self_attention(cluster_bottleneck, training=training)
    centers_out = centers_out + self.self_attention_drop_path(attention_update,
                                                               training=training)
    centers_out = self._activation_fn(centers_out)

    ffn = self.ffn_project(self.ffn_expand(centers_out, training=training), training=training)
    centers_out = self._activation_fn(
        centers_out + self.ffn_drop_path(ffn, training=training))
    return centers_out, auxiliary

  def get_config(self):
    config = super().get_config()
    config.update(
        num_classes=self.num_classes, channels=self.channels,
        bottleneck_channels=self.bottleneck_channels, key_channels=self.key_channels,
        value_channels=self.value_channels, num_heads=self.num_heads,
        ffn_channels=self.ffn_channels, drop_path_keep_prob=self.drop_path_keep_prob,
        activation=self.activation, head_channels=self.head_channels,
        mask_channels=self.mask_channels, head_conv_type=self.head_conv_type)
    return config
