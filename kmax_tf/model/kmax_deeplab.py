"""The kMaX-DeepLab meta architecture.

kMaX-DeepLab is a pixel encoder, an
enhanced pixel decoder, a kMaX transformer decoder whose cluster centers are
updated by k-means cross-attention, mask/class heads, an auxiliary semantic
branch (training only) and mask-wise panoptic post-processing.

The components are built elsewhere (kmax_tf.model_builder) and passed in; this
class only wires them in DeepLab2's order so results match DeepLab2 number for
number. At inference it computes only what the requested outputs need: the
auxiliary semantic decoder (about 30% of DeepLab2's R50 forward time) runs only
when `semantic_logits` is requested.
"""
from typing import Dict, Optional, Sequence

import tensorflow as tf
import tf_keras

from kmax_tf import outputs as keys
from kmax_tf.layers import align_corners_resize
from kmax_tf.runtime.no_autograph import without_autograph


DEFAULT_INFERENCE_OUTPUTS = (keys.PIXEL_SPACE_MASK_LOGITS, keys.TRANSFORMER_CLASS_LOGITS,
                             keys.PIXEL_SPACE_NORMALIZED_FEATURE) + keys.POST_PROCESSED_OUTPUTS


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class KMaXDeepLab(tf_keras.Model):
  """kMaX-DeepLab: `model(images, training=False)` with images float32 [B,H,W,3] in 0..255.

  Args:
    pixel_encoder: maps the normalized image (image / 127.5 - 1) to an
      endpoint dict (stage1..stage5, res1..res5).
    pixel_decoder: adds decoder_stage* and decoder_output to the endpoints
      (e.g. KMaXPixelDecoder).
    transformer_decoder: adds the class/mask features, feature_panoptic,
      feature_semantic and auxiliary_outputs (e.g. KMaXTransformerDecoder).
    mask_class_head: maps those features to mask logits [B, h, w, N], class
      logits [B, N, K + 1] and normalized pixel features (MaskClassHead).
    semantic_head: auxiliary semantic head returning [B, h', w', classes]
      logits; None if the model has no semantic branch.
    semantic_decoder: optional decoder (SemanticDecoder) run before the
      semantic head; None feeds feature_semantic to the head directly.
    post_processor: turns mask and class logits into panoptic maps (e.g.
      MaskWisePostProcessor); None if the model returns raw outputs only.
    **kwargs: tf_keras.Model arguments.
  """

  def __init__(self,
               pixel_encoder: tf_keras.layers.Layer,
               pixel_decoder: tf_keras.layers.Layer,
               transformer_decoder: tf_keras.layers.Layer,
               mask_class_head: tf_keras.layers.Layer,
               semantic_head: Optional[tf_keras.layers.Layer] = None,
               semantic_decoder: Optional[tf_keras.layers.Layer] = None,
               post_processor: Optional[tf_keras.layers.Layer] = None,
               **kwargs):
    super().__init__(**kwargs)
    self.pixel_encoder = pixel_encoder
    self.pixel_decoder = pixel_decoder
    self.transformer_decoder = transformer_decoder
    self.mask_class_head = mask_class_head
    self.semantic_head = semantic_head
    self.semantic_decoder = semantic_decoder
    self.post_processor = post_processor

  # === Forward ===
  def _features(self, images, training):
    x = images / 127.5 - 1.0
    endpoints = self.pixel_encoder(x, training=training)
    endpoints = self.pixel_decoder(endpoints, training=training)
    return self.transformer_decoder(endpoints, training=training)

  def _semantic_logits(self, endpoints, training):
    if self.semantic_head is None:
      raise ValueError("semantic_logits requested but the model has no auxiliary semantic head.")
    feature = endpoints[keys.FEATURE_SEMANTIC]
    if self.semantic_decoder is not None:
      feature = self.semantic_decoder(endpoints, training=training)
    return self.semantic_head(feature, training=training)

  @without_autograph
  def call(self, images, training=False, output_keys: Optional[Sequence[str]] = None):
    """Runs the network.

    Args:
      images: float32 [B, H, W, 3], RGB in 0..255.
      training: training mode returns the raw outputs, `semantic_logits` and the 6
        auxiliary kMaX outputs (resized to the main output size) for the losses.
      output_keys: inference only; the outputs to compute (names in
        kmax_tf.outputs). Default: the raw mask/class outputs and the
        post-processed maps; add `semantic_logits` to run the semantic branch.
    """
    training = bool(training)
    if output_keys is None:
      output_keys = DEFAULT_INFERENCE_OUTPUTS
    unknown = set(output_keys) - set(keys.RAW_OUTPUTS + keys.POST_PROCESSED_OUTPUTS
                                     + (keys.SEMANTIC_SCORES,))
    if unknown and not training:
      raise ValueError(f"Unknown output_keys {sorted(unknown)}; see kmax_tf.outputs.")
    endpoints = self._features(images, training)
    results = dict(self.mask_class_head(endpoints, training=training))
    if training:
      if self.semantic_head is not None:
        results[keys.SEMANTIC_LOGITS] = self._semantic_logits(endpoints, training)
      results[keys.AUXILIARY_OUTPUTS] = self._resize_auxiliary(
          endpoints[keys.AUXILIARY_OUTPUTS], results[keys.PIXEL_SPACE_MASK_LOGITS])
      return results
    if keys.SEMANTIC_LOGITS in output_keys:
      results[keys.SEMANTIC_LOGITS] = self._semantic_logits(endpoints, training)
    wanted_post = [k for k in output_keys
                   if k in keys.POST_PROCESSED_OUTPUTS or k == keys.SEMANTIC_SCORES]
    if wanted_post:
      if self.post_processor is None:
        raise ValueError(f"{wanted_post} requested but the model has no post-processor.")
      results.update(self.post_processor(results))
    return {k: results[k] for k in output_keys}

  @staticmethod
  def _resize_auxiliary(auxiliary_outputs, main_mask_logits):
    size = main_mask_logits.shape[1:3]
    resized = []
    for aux in auxiliary_outputs:
      aux = dict(aux)
      for k in (keys.PIXEL_SPACE_MASK_LOGITS, keys.PIXEL_SPACE_NORMALIZED_FEATURE):
        aux[k] = align_corners_resize.resize_features(aux[k], size)
      resized.append(aux)
    return tuple(resized)

  # === Checkpoints ===
  def deeplab2_variable_map(self) -> Dict[str, tf.Variable]:
    """{DeepLab2 model-only checkpoint key (no suffix): variable} for every variable."""
    from kmax_tf.checkpoints import deeplab2_names  # pylint: disable=g-import-not-at-top
    return deeplab2_names.model_variable_map(self)

  def deeplab2_imagenet_variable_map(self) -> Optional[Dict[str, tf.Variable]]:
    """{name in a DeepLab2 MOAT ImageNet checkpoint: variable}, None for other encoders."""
    from kmax_tf.checkpoints import deeplab2_names  # pylint: disable=g-import-not-at-top
    return deeplab2_names.imagenet_variable_map(self)

  # === Config ===
  def get_config(self):
    config = {"name": self.name}
    for attr in ("pixel_encoder", "pixel_decoder", "transformer_decoder", "mask_class_head",
                 "semantic_head", "semantic_decoder", "post_processor"):
      layer = getattr(self, attr)
      config[attr] = None if layer is None else tf_keras.layers.serialize(layer)
    return config

  @classmethod
  def from_config(cls, config, custom_objects=None):
    config = dict(config)
    for attr in ("pixel_encoder", "pixel_decoder", "transformer_decoder", "mask_class_head",
                 "semantic_head", "semantic_decoder", "post_processor"):
      if config.get(attr) is not None:
        config[attr] = tf_keras.layers.deserialize(config[attr], custom_objects=custom_objects)
    return cls(**config)
