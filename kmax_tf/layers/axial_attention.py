"""1-D position-sensitive multi-head self-attention along one axis.

Axial-DeepLab (Wang et al., "Axial-DeepLab: Stand-Alone Axial-Attention for
Panoptic Segmentation", ECCV 2020) factorizes 2-D self-attention into two 1-D
attentions with relative positional encodings on queries, keys and values;
MaX-DeepLab (CVPR 2021) and kMaX-DeepLab use it in the axial-ResNet backbone and the pixel
decoder.

For input x [B, L, C] and each head:
  logits = BN_sim([q.k, q.r_q, k.r_k]) summed over the three terms,
  w = softmax(logits over keys),
  out = BN_out([w.v, w.r_v]) summed over the two terms,
with q, k, v = BN_qkv(x @ W_qkv) and r_* relative positional embeddings
gathered from a [2 * MAX_SPAN - 1, depth] table by the key-minus-query
distance. The three batch norms sit where DeepLab2 puts them; their parameter
shapes ([3, 1, heads, 1, 1] and [2, 1, heads, 1, value_depth]) follow from
normalizing the stacked terms over axes (0, 2) and (0, 2, 4), exactly as in
DeepLab2 checkpoints.

Only global attention is implemented (the axis length must not exceed
`query_shape`), as in DeepLab2, whose local variant raises
NotImplementedError; kMaX feature maps (stride >= 16) are always within the
default span of 129.
"""
import numpy as np
import tensorflow as tf
import tf_keras

from kmax_tf.layers import normalization

# Size of the relative-embedding table is 2 * MAX_SPAN - 1 rows. DeepLab2 fixes
# MAX_SPAN = 255 so that checkpoints trained with any span up to 255 load into
# any other span; we keep it for checkpoint compatibility.
MAX_SPAN = 255


def relative_distance_index(length):
  """[length, length] int32 rows of the embedding table for (query, key) pairs.

  Args:
    length: L, the attended axis length in positions.

  Returns:
    [L, L] int32 numpy array; entry [q, k] = clip(k - q + MAX_SPAN - 1, 0,
    2 * MAX_SPAN - 2).
  """
  positions = np.arange(length)
  distance = positions[None, :] - positions[:, None] + MAX_SPAN - 1
  # Beyond MAX_SPAN all distances share the border embeddings (DeepLab2 rule).
  return np.clip(distance, 0, 2 * MAX_SPAN - 2).astype(np.int32)


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class AxialAttention(tf_keras.layers.Layer):
  """Global 1-D axial attention on [B, L, C] -> [B, L, total_value_depth].

  Weights (checkpoint importer relies on these attributes): `qkv_kernel`
  [C, 2 * total_key_depth + total_value_depth], `query_rpe_embeddings`,
  `key_rpe_embeddings` [509, total_key_depth // num_heads],
  `value_rpe_embeddings` [509, total_value_depth // num_heads]; batch norms
  `batch_norm_qkv`, `batch_norm_similarity`, `batch_norm_retrieved_output`.

  Args:
    total_key_depth: query/key channels summed over the heads.
    total_value_depth: value (and output) channels summed over the heads.
    num_heads: attention heads; must divide both depths.
    query_shape: longest supported axis length L (global attention only).
    qk_rpe_init_std: stddev of the truncated-normal init of the query and key
      relative positional embeddings.
    value_rpe_init_std: the same for the value relative embeddings.
    **kwargs: tf_keras.layers.Layer arguments.
  """

  def __init__(self,
               total_key_depth: int = 512,
               total_value_depth: int = 1024,
               num_heads: int = 8,
               query_shape: int = 129,
               qk_rpe_init_std: float = 1.0,
               value_rpe_init_std: float = 1.0,
               **kwargs):
    super().__init__(**kwargs)
    if total_key_depth % num_heads or total_value_depth % num_heads:
      raise ValueError(f"{self.name}: key depth {total_key_depth} and value depth "
                       f"{total_value_depth} must be divisible by {num_heads} heads.")
    self.total_key_depth = total_key_depth
    self.total_value_depth = total_value_depth
    self.num_heads = num_heads
    self.query_shape = query_shape
    self.qk_rpe_init_std = qk_rpe_init_std
    self.value_rpe_init_std = value_rpe_init_std
    self._key_depth_per_head = total_key_depth // num_heads
    self._value_depth_per_head = total_value_depth // num_heads

    self.batch_norm_qkv = normalization.batch_norm("batch_norm_qkv", axis=-1)
    # Stacked [3, B, heads, L, L] logits: one scale per term and head.
    self.batch_norm_similarity = normalization.batch_norm(
        "batch_norm_similarity", axis=[0, 2])
    # Stacked [2, B, heads, L, depth] outputs: per term, head and channel.
    self.batch_norm_retrieved_output = normalization.batch_norm(
        "batch_norm_retrieved_output", axis=[0, 2, 4])

  def build(self, input_shape):
    length, channels = input_shape[1], input_shape[-1]
    if length is None:
      raise ValueError(f"{self.name}: the attention axis needs a static length.")
    if length > self.query_shape:
      raise NotImplementedError(
          f"{self.name}: axis length {length} exceeds query_shape {self.query_shape}; "
          "local axial attention is not supported (nor in DeepLab2).")
    self._length = length
    self._distance_index = tf.constant(relative_distance_index(length))
    # Transformer-style init (SASA/ViT); the batch norms make it uncritical.
    self.qkv_kernel = self.add_weight(
        name="qkv_kernel",
        shape=[channels, 2 * self.total_key_depth + self.total_value_depth],
        initializer=tf_keras.initializers.TruncatedNormal(stddev=channels**-0.5))
    table = 2 * MAX_SPAN - 1
    self.query_rpe_embeddings = self.add_weight(
        name="query_rpe_embeddings", shape=[table, self._key_depth_per_head],
        initializer=tf_keras.initializers.TruncatedNormal(stddev=self.qk_rpe_init_std))
    self.key_rpe_embeddings = self.add_weight(
        name="key_rpe_embeddings", shape=[table, self._key_depth_per_head],
        initializer=tf_keras.initializers.TruncatedNormal(stddev=self.qk_rpe_init_std))
    self.value_rpe_embeddings = self.add_weight(
        name="value_rpe_embeddings", shape=[table, self._value_depth_per_head],
        initializer=tf_keras.initializers.TruncatedNormal(stddev=self.value_rpe_init_std))
    super().build(input_shape)

  def call(self, inputs, training=None):
    length = self._length
    if inputs.shape[1] != length:
      raise ValueError(f"{self.name}: built for axis length {length}, got {inputs.shape[1]}; "
                       "the relative-position table is gathered for one length.")
    # The einsum equations and the op order below are DeepLab2's: TF lowers
    # each equation to its own transpose/matmul sequence, and keeping them
    # keeps float32 results bit-identical to DeepLab2's.
    qkv = tf.einsum("nlc,cd->nld", inputs, self.qkv_kernel)
    qkv = self.batch_norm_qkv(qkv, training=training)
    query, key, value = tf.split(
        qkv, [self.total_key_depth, self.total_key_depth, self.total_value_depth], axis=-1)
    query = tf.transpose(
        tf.reshape(query, [-1, length, self.num_heads, self._key_depth_per_head]), [0, 2, 1, 3])
    key = tf.transpose(
        tf.reshape(key, [-1, length, self.num_heads, self._key_depth_per_head]), [0, 2, 1, 3])
    value = tf.reshape(value, [-1, length, self.num_heads, self._value_depth_per_head])

    query_rpe = tf.gather(self.query_rpe_embeddings, self._distance_index)
    key_rpe = tf.gather(self.key_rpe_embeddings, self._distance_index)
    value_rpe = tf.gather(self.value_rpe_embeddings, self._distance_index)

    logits = tf.stack([
        tf.einsum("bhld,bhmd->bhlm", query, key),
        tf.einsum("bhld,lmd->bhlm", query, query_rpe),
        tf.einsum("bhmd,lmd->bhlm", key, key_rpe),
    ])
    logits = tf.reduce_sum(self.batch_norm_similarity(logits, training=training), axis=0)
    weights = tf.nn.softmax(logits, axis=-1)

    retrieved = tf.stack([
        tf.einsum("bhlm,bmhd->bhld", weights, value),
        tf.einsum("bhlm,lmd->bhld", weights, value_rpe),
    ])
    retrieved = tf.reduce_sum(
        self.batch_norm_retrieved_output(retrieved, training=training), axis=0)
    retrieved = tf.transpose(retrieved, [0, 2, 1, 3])
    return tf.reshape(retrieved, [-1, length, self.total_value_depth])

  def get_config(self):
    config = super().get_config()
    config.update(
        total_key_depth=self.total_key_depth, total_value_depth=self.total_value_depth,
        num_heads=self.num_heads, query_shape=self.query_shape,
        qk_rpe_init_std=self.qk_rpe_init_std, value_rpe_init_std=self.value_rpe_init_std)
    return config
