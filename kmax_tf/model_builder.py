"""Turns an experiment config into kMaX-DeepLab constructor arguments.

The one place that reads the config for the model (kMaX-DeepLab): every component
constructor takes plain arguments. Settings that
DeepLab2 derives from the dataset name come from
`kmax_tf.config.kmax_settings.resolve_kmax_settings` (explicit fields with
per-dataset defaults).
"""
from typing import Optional, Sequence

import tensorflow as tf
import tf_keras

from kmax_tf import outputs as keys
from kmax_tf.config import kmax_settings
from kmax_tf.config.config_error import ConfigError
from kmax_tf.data import datasets
from kmax_tf.heads import mask_class_head
from kmax_tf.heads import panoptic_single_head
from kmax_tf.heads import semantic_decoder
from kmax_tf.layers import normalization
from kmax_tf.model import kmax_deeplab
from kmax_tf.pixel_decoder import kmax_pixel_decoder
from kmax_tf.pixel_encoders import axial_resnet50
from kmax_tf.pixel_encoders import convnext
from kmax_tf.pixel_encoders import convnext_sizes
from kmax_tf.pixel_encoders import moat
from kmax_tf.pixel_encoders import moat_sizes
from kmax_tf.pixel_encoders import resnet50
from kmax_tf.post_processing import mask_wise_post_processor
from kmax_tf.transformer_decoder import kmax_transformer_decoder


# Compute types: float32, or Keras mixed precision (float32 variables).
PRECISIONS = ("float32", "bfloat16", "float16")


def set_precision(precision: str, allowed: Sequence[str] = PRECISIONS):
  """Sets the global Keras policy that layers built next compute in.

  "float32", or "bfloat16" / "float16" for the mixed policies. Returns the
  previous policy, for the caller to restore.

  Args:
    precision: "float32", "bfloat16" or "float16" (the latter two select
      Keras' mixed policies with float32 variables).
    allowed: the precisions this caller accepts.
  """
  if precision not in allowed:
    raise ValueError(f"precision must be one of {tuple(allowed)}, got {precision!r}")
  previous = tf_keras.mixed_precision.global_policy()
  tf_keras.mixed_precision.set_global_policy(
      "float32" if precision == "float32" else f"mixed_{precision}")
  return previous


def build_pixel_encoder(name: str, drop_path_keep_prob: float,
                        input_normalization: str = "inception"):
  """Builds the pixel encoder named in the config.

  Args:
    name: 'resnet50', 'axial_resnet50', a ConvNeXt size (convnext_sizes) or a
      MOAT size (moat_sizes).
    drop_path_keep_prob: end point of the encoder's drop-path schedule; 1.0
      disables drop path.
    input_normalization: 'inception' (image / 127.5 - 1) or 'imagenet' (MOAT
      only, see moat.MOAT).
  """
  if name in moat_sizes.MOAT_SIZES:
    return moat.MOAT(**moat_sizes.MOAT_SIZES[name], drop_path_keep_prob=drop_path_keep_prob,
                     input_normalization=input_normalization, name=name)
  if input_normalization != "inception":
    raise ValueError(f"Pixel encoder {name!r} supports only the 'inception' input "
                     f"normalization, got {input_normalization!r}.")
  if name == "resnet50":
    return resnet50.resnet50(drop_path_keep_prob=drop_path_keep_prob)
  if name == "axial_resnet50":
    return axial_resnet50.axial_resnet50(drop_path_keep_prob=drop_path_keep_prob)
  if name in convnext_sizes.CONVNEXT_SIZES:
    return convnext.ConvNeXt(**convnext_sizes.CONVNEXT_SIZES[name],
                             drop_path_keep_prob=drop_path_keep_prob, name=name)
  raise ValueError(f"Unsupported pixel encoder {name!r}.")


def _semantic_branch(config, settings, num_classes):
  """(semantic_decoder or None, semantic_head) as DeepLab2's MaXDeepLab predictor."""
  options = config.model_options
  head_options = options.max_deeplab.auxiliary_semantic_head
  decoder = None
  if settings.use_auxiliary_semantic_decoder:
    dec = options.decoder
    low_level = options.max_deeplab.auxiliary_low_level
    decoder = semantic_decoder.SemanticDecoder(
        high_level_feature_key=dec.feature_key,
        low_level_feature_keys=[item.feature_key for item in low_level],
        low_level_channels_project=[item.channels_project for item in low_level],
        aspp_channels=dec.aspp_channels,
        atrous_rates=list(dec.atrous_rates),
        decoder_channels=dec.decoder_channels,
        aspp_use_only_1x1_proj_conv=dec.aspp_use_only_1x1_proj_conv,
        decoder_conv_type=dec.decoder_conv_type,
        activation="gelu",
        name="semantic_decoder")
  head = panoptic_single_head.PanopticSingleHead(
      head_channels=head_options.head_channels, output_channels=num_classes,
      conv_type=head_options.head_conv_type, activation="gelu", name="semantic_head")
  return decoder, head


def eval_crop_size(config):
  """[height, width] in pixels of the eval crop (the train crop if unset).

  Args:
    config: ExperimentOptions.
  """
  crop = list(config.eval_dataset_options.crop_size) or list(config.train_dataset_options.crop_size)
  if len(crop) != 2:
    raise ValueError("eval_dataset_options.crop_size must hold 2 values (height, width), "
                     f"got {crop}.")
  return crop


def build_post_processor(config, descriptor, output_size: Sequence[int]):
  """The mask-wise post-processor with the config's evaluator thresholds.

  Args:
    config: ExperimentOptions (reads evaluator_options).
    descriptor: DatasetDescriptor giving thing ids, label divisor and void.
    output_size: (height, width) in pixels of the panoptic maps.
  """
  ev = config.evaluator_options
  mw = ev.maskwise_postprocessing
  return mask_wise_post_processor.MaskWisePostProcessor(
      thing_class_ids=list(descriptor.thing_class_ids),
      label_divisor=descriptor.panoptic_label_divisor,
      ignore_label=descriptor.ignore_label,
      output_size=list(output_size),
      thing_class_threshold=mw.transformer_class_confidence_threshold_thing,
      stuff_class_threshold=mw.transformer_class_confidence_threshold_stuff,
      overlap_threshold=mw.overlapping_threshold,
      thing_area_limit=ev.thing_area_limit,
      stuff_area_limit=ev.stuff_area_limit,
      pixel_confidence_threshold=ev.pixel_confidence_threshold,
      reorder_class_weight=mw.reorder_class_weight,
      reorder_mask_weight=mw.reorder_mask_weight,
      name="post_processor")


def build_model(config, *, synchronized_batch_norm: bool = False,
                input_size: Optional[Sequence[int]] = None,
                for_training: bool = False) -> kmax_deeplab.KMaXDeepLab:
  """Builds kMaX-DeepLab for `config` and creates its variables.

  Args:
    config: ExperimentOptions (kmax_tf.load_config).
    synchronized_batch_norm: cross-replica BN (the trainer sets it when there is
      more than one replica and config says use_sync_batchnorm).
    input_size: [H, W] the post-processor resizes to; default the eval crop.
    for_training: keep the configured drop-path rates; inference builds
      disable drop path everywhere (DeepLab2's export forgot the transformer
      decoder's).
  """
  settings = kmax_settings.resolve_kmax_settings(config)
  descriptor = datasets.get_dataset_descriptor(settings.dataset_name)
  num_classes = descriptor.num_classes
  head_classes = config.model_options.max_deeplab.auxiliary_semantic_head.output_channels
  if head_classes and head_classes != num_classes:
    raise ValueError(
        f"model_options.max_deeplab.auxiliary_semantic_head.output_channels is {head_classes} "
        f"but dataset {descriptor.name!r} has {num_classes} classes (including void).")
  # DeepLab2 adds a void channel to the class head when the ignore label lies
  # outside the semantic classes (Cityscapes: 19 + 1), else reuses class 0's slot.
  class_head_classes = num_classes + (1 if descriptor.ignore_label >= num_classes else 0)
  backbone_keep = settings.backbone_drop_path_keep_prob if for_training else 1.0
  decoder_keep = settings.transformer_decoder_drop_path_keep_prob if for_training else 1.0
  input_size = list(input_size) if input_size is not None else eval_crop_size(config)

  solver = config.trainer_options.solver_options
  if not 0.0 <= solver.batchnorm_momentum < 1.0:
    raise ConfigError(f"trainer_options.solver_options.batchnorm_momentum must be in [0, 1), "
                      f"got {solver.batchnorm_momentum}")
  if not solver.batchnorm_epsilon > 0.0:
    raise ConfigError(f"trainer_options.solver_options.batchnorm_epsilon must be > 0, "
                      f"got {solver.batchnorm_epsilon}")
  with normalization.synchronized_batch_norm(synchronized_batch_norm), \
       normalization.batch_norm_constants(solver.batchnorm_momentum, solver.batchnorm_epsilon):
    encoder = build_pixel_encoder(settings.pixel_encoder_name, backbone_keep,
                                  settings.backbone_input_normalization)
    pixel_decoder = kmax_pixel_decoder.KMaXPixelDecoder.from_output_stride(
        settings.high_resolution_output_stride, name="pixel_decoder")
    max_options = config.model_options.max_deeplab
    transformer_decoder = kmax_transformer_decoder.KMaXTransformerDecoder(
        num_classes=class_head_classes,
        num_mask_slots=settings.num_mask_slots,
        drop_path_keep_prob=decoder_keep,
        head_channels=max_options.pixel_space_head.head_channels,
        mask_channels=max_options.pixel_space_head.output_channels,
        name="transformer_decoder")
    heads = mask_class_head.MaskClassHead(
        num_classes=class_head_classes,
        head_channels=max_options.pixel_space_head.head_channels,
        mask_channels=max_options.pixel_space_head.output_channels,
        name="mask_class_head")
    semantic_decoder, semantic_head = _semantic_branch(config, settings, num_classes)
    post_processor = build_post_processor(config, descriptor, input_size)
    model = kmax_deeplab.KMaXDeepLab(
        pixel_encoder=encoder, pixel_decoder=pixel_decoder,
        transformer_decoder=transformer_decoder, mask_class_head=heads,
        semantic_head=semantic_head, semantic_decoder=semantic_decoder,
        post_processor=post_processor, name="kmax_deeplab")
    # A symbolic call creates every variable without computing anything; it stays
    # inside the BN context because some layers create sublayers in build().
    model(tf_keras.Input(shape=list(input_size) + [3]), training=False,
          output_keys=keys.RAW_OUTPUTS)
  model.dataset_descriptor = descriptor
  return model
