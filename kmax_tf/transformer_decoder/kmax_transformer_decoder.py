"""The kMaX-DeepLab transformer decoder.

the kMaX-DeepLab paper (Sec. 3.3, Fig. 3): learned
cluster centers (one per mask slot, 256-d) are refined by kMaX transformer
layers on the pixel decoder's features from coarse to fine - by default two
layers each on the stride-32, stride-16 and stride-8 features - and finally
projected to class and mask embeddings for the prediction head.

Reads endpoints `decoder_stage1` (stride 32), `decoder_stage2` (16),
`decoder_stage3` (8), `decoder_output` and `stage5`. Returns a copy of the input
endpoints plus (DeepLab2's names):
  transformer_class_feature, transformer_mask_feature   [B, N, channels]
  feature_panoptic  = decoder_output  (input of the final pixel head)
  feature_semantic  = stage5          (input of the auxiliary semantic branch)
  auxiliary_outputs = tuple of the per-layer prediction dicts, in layer order,
                      at each layer's native resolution.
"""
from typing import Sequence

import tensorflow as tf
import tf_keras

from kmax_tf import outputs
from kmax_tf.layers import conv_bn_act
from kmax_tf.transformer_decoder import kmax_transformer_layer

# Pixel-decoder endpoint read at each decoder stage, coarse to fine.
STAGE_ENDPOINTS = ("decoder_stage1", "decoder_stage2", "decoder_stage3")
STAGE_STRIDES = (32, 16, 8)
PANOPTIC_FEATURE_SOURCE = "decoder_output"
SEMANTIC_FEATURE_SOURCE = "stage5"


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class KMaXTransformerDecoder(tf_keras.layers.Layer):
  """Cluster centers refined by kMaX layers at strides 32, 16 and 8.

  Args:
    num_classes: class-logit channels of the auxiliary heads, void included.
    num_mask_slots: N, the number of learned cluster centers (mask slots).
    num_layers: kMaX layers at stride 32, 16 and 8 (three counts).
    channels: channels of the cluster centers and of the class and mask
      embeddings returned.
    bottleneck_channels: see KMaXTransformerLayer.
    key_channels: see KMaXTransformerLayer.
    value_channels: see KMaXTransformerLayer.
    num_heads: see KMaXTransformerLayer.
    ffn_channels: see KMaXTransformerLayer.
    drop_path_keep_prob: keep probability (0, 1] of every layer's residual
      branches in training; 1.0 disables drop path.
    activation: activation name (see kmax_tf.layers.activations).
    head_channels: see KMaXTransformerLayer.
    mask_channels: see KMaXTransformerLayer.
    head_conv_type: see KMaXTransformerLayer.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               num_classes: int,
               num_mask_slots: int = 128,
               num_layers: Sequence[int] = (2, 2, 2),
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
    num_layers = tuple(int(n) for n in num_layers)
    if len(num_layers) != len(STAGE_ENDPOINTS):
      raise ValueError(f"{self.name}: num_layers needs one count per stride "
                       f"{STAGE_STRIDES}, got {num_layers}.")
    self.num_classes = num_classes
    self.num_mask_slots = num_mask_slots
    self.num_layers = num_layers
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

    self.kmax_layers = []
    self.layer_endpoints = []
    for endpoint, stride, count in zip(STAGE_ENDPOINTS, STAGE_STRIDES, num_layers):
      for i in range(count):
        self.kmax_layers.append(kmax_transformer_layer.KMaXTransformerLayer(
            num_classes, channels=channels, bottleneck_channels=bottleneck_channels,
            key_channels=key_channels, value_channels=value_channels,
            num_heads=num_heads, ffn_channels=ffn_channels,
            drop_path_keep_prob=drop_path_keep_prob, activation=activation,
            head_channels=head_channels, mask_channels=mask_channels,
            head_conv_type=head_conv_type, name=f"kmax_layer_os{stride}_{i}"))
        self.layer_endpoints.append(endpoint)

    self.class_embedding_projection = conv_bn_act.Conv1DBNAct(
        channels, activation=activation, name="class_embedding_projection")
    self.mask_embedding_projection = conv_bn_act.Conv1DBNAct(
        channels, activation=activation, name="mask_embedding_projection")

  def build(self, input_shape):
    self.cluster_centers = self.add_weight(
        name="cluster_centers", shape=(1, self.num_mask_slots, self.channels),
        initializer=tf_keras.initializers.TruncatedNormal(stddev=1.0), trainable=True)
    super().build(input_shape)

  def call(self, endpoints, training=None):
    results = dict(endpoints)
    batch_size = tf.shape(endpoints[STAGE_ENDPOINTS[0]])[0]
    centers = tf.tile(self.cluster_centers, [batch_size, 1, 1])
    auxiliary_outputs = []
    for layer, endpoint in zip(self.kmax_layers, self.layer_endpoints):
      centers, auxiliary = layer((endpoints[endpoint], centers), training=training)
      auxiliary_outputs.append(auxiliary)

    results[outputs.TRANSFORMER_CLASS_FEATURE] = self.class_embedding_projection(
        centers, training=training)
    results[outputs.TRANSFORMER_MASK_FEATURE] = self.mask_embedding_projection(
        centers, training=training)
    results[outputs.FEATURE_PANOPTIC] = endpoints[PANOPTIC_FEATURE_SOURCE]
    results[outputs.FEATURE_SEMANTIC] = endpoints[SEMANTIC_FEATURE_SOURCE]
    results[outputs.AUXILIARY_OUTPUTS] = tuple(auxiliary_outputs)
    return results

  def get_config(self):
    config = super().get_config()
    config.update(
        num_classes=self.num_classes, num_mask_slots=self.num_mask_slots,
        num_layers=list(self.num_layers), channels=self.channels,
        bottleneck_channels=self.bottleneck_channels, key_channels=self.key_channels,
        value_channels=self.value_channels, num_heads=self.num_heads,
        ffn_channels=self.ffn_channels, drop_path_keep_prob=self.drop_path_keep_prob,
        activation=self.activation, head_channels=self.head_channels,
        mask_channels=self.mask_channels, head_conv_type=self.head_conv_type)
    return config
