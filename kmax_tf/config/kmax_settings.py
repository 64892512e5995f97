"""Explicit kMaX-DeepLab model settings resolved from an experiment config.

DeepLab2 picks the number of mask slots, the pixel decoder's finest output
stride, whether the auxiliary semantic head has its own decoder, and the
transformer-decoder drop-path rate by looking for "coco", "cityscapes" or
"ade20k" in the dataset name, and silently uses COCO's values for any other
dataset. kmax_tf reads them from model_options.kmax_deeplab; only unset fields
take the defaults of a known dataset (the values the paper's models were
trained with), and for other datasets they must be set.
"""

import dataclasses
import types
from typing import Mapping, Optional

import numpy as np

from kmax_tf.config.config_error import ConfigError
from kmax_tf.data import datasets
from kmax_tf.pixel_encoders import moat_sizes


@dataclasses.dataclass(frozen=True)
class KMaXSettings:
  """Everything the kMaX-DeepLab builder needs besides the raw options.

  Attributes:
    dataset_name: Dataset whose label space the model predicts.
    pixel_encoder_name: Backbone architecture: "resnet50", "axial_resnet50",
      "convnext_{tiny,small,base,large}", "moat{0..4}" or "tiny_moat{0..3}",
      the MOATs optionally with the suffix "_no_pe".
    backbone_drop_path_keep_prob: Stochastic depth keep probability of the
      backbone.
    backbone_input_normalization: "inception" (image / 127.5 - 1, what
      DeepLab2's kMaX feeds every encoder) or "imagenet" (ImageNet mean/std;
      MOAT encoders only).
    backbone_pretrained_weights: Backbone-only weights to load, or None.
    num_mask_slots: Number of mask slots (cluster centers).
    high_resolution_output_stride: Finest pixel decoder stride (4 or 2).
    use_auxiliary_semantic_decoder: Whether the auxiliary semantic head has
      its own ASPP decoder.
    transformer_decoder_drop_path_keep_prob: Stochastic depth keep
      probability inside the transformer decoder.
  """
  dataset_name: str
  pixel_encoder_name: str
  backbone_drop_path_keep_prob: float
  backbone_input_normalization: str
  backbone_pretrained_weights: Optional[str]
  num_mask_slots: int
  high_resolution_output_stride: int
  use_auxiliary_semantic_decoder: bool
  transformer_decoder_drop_path_keep_prob: float


# Defaults per dataset, in the order (num_mask_slots,
# high_resolution_output_stride, use_auxiliary_semantic_decoder,
# transformer_decoder_drop_path_keep_prob): the settings of DeepLab2's
# published kMaX-DeepLab models.
_KMAX_FIELDS = ("num_mask_slots", "high_resolution_output_stride",
                "use_auxiliary_semantic_decoder",
                "transformer_decoder_drop_path_keep_prob")
KMAX_DATASET_DEFAULTS: Mapping[str, Mapping[str, object]] = (
    types.MappingProxyType({
        datasets.COCO_PANOPTIC: types.MappingProxyType(
            dict(zip(_KMAX_FIELDS, (128, 4, True, 0.8)))),
        datasets.CITYSCAPES_PANOPTIC: types.MappingProxyType(
            dict(zip(_KMAX_FIELDS, (256, 2, False, 0.8)))),
        datasets.ADE20K_PANOPTIC: types.MappingProxyType(
            dict(zip(_KMAX_FIELDS, (128, 4, True, 1.0)))),
    }))

# Backbone names of kMaX configs (DeepLab2 marks its kMaX meta-architecture
# with the "kmax_" prefix) -> pixel encoder architecture.
_PIXEL_ENCODERS = types.MappingProxyType({
    "kmax_resnet50": "resnet50",
    "kmax_axial_resnet50": "axial_resnet50",
    "kmax_axial_resnet_50": "axial_resnet50",
    "kmax_convnext_tiny": "convnext_tiny",
    "kmax_convnext_small": "convnext_small",
    "kmax_convnext_base": "convnext_base",
    "kmax_convnext_large": "convnext_large",
    # MOAT: DeepLab2's moat.get_model names with the "kmax_" prefix (the
    # bare names have no other meaning in DeepLab2 and are accepted too).
    **{"kmax_" + name: encoder
       for name, encoder in moat_sizes.DEEPLAB2_BACKBONE_NAMES.items()},
    **moat_sizes.DEEPLAB2_BACKBONE_NAMES,
})
_INPUT_NORMALIZATIONS = ("inception", "imagenet")
_SUPPORTED_OUTPUT_STRIDES = (4, 2)


def pixel_encoder_name(backbone_name: str) -> str:
  """Maps model_options.backbone.name to the pixel encoder architecture."""
  key = backbone_name.lower()
  if key in _PIXEL_ENCODERS:
    return _PIXEL_ENCODERS[key]
  supported = ", ".join(sorted(k for k in _PIXEL_ENCODERS if k.startswith("kmax_")))
  if "kmax_" + key in _PIXEL_ENCODERS:
    raise ConfigError(
        f"model_options.backbone.name {backbone_name!r}: without the 'kmax_' "
        "prefix DeepLab2 builds MaX-DeepLab, which kmax_tf does not implement; "
        f"use 'kmax_{key}' for kMaX-DeepLab (supported: {supported})")
  raise ConfigError(
      f"model_options.backbone.name {backbone_name!r} is not a supported "
      f"kMaX-DeepLab backbone (supported: {supported})")


def resolve_kmax_settings(config,
                          dataset_name: Optional[str] = None) -> KMaXSettings:
  """Resolves the explicit kMaX settings of an ExperimentOptions message.

  Args:
    config: kmax_tf.ExperimentOptions.
    dataset_name: Dataset the model is built for. Defaults to
      train_dataset_options.dataset, or eval_dataset_options.dataset when no
      training dataset is set.

  Returns:
    KMaXSettings. Fields set in model_options.kmax_deeplab win; unset ones
    come from KMAX_DATASET_DEFAULTS[dataset_name].

  Raises:
    ConfigError: a needed setting is unset and the dataset has no defaults,
      the train and eval datasets would give different unset defaults, the
      two spellings of transformer_decoder_drop_path_keep_prob disagree, a
      value is out of range, or the backbone is unknown.
  """
  model = config.model_options
  dataset_name = dataset_name or _dataset_of(config)
  explicit = _explicit_kmax_fields(model)
  missing = [f for f in _KMAX_FIELDS if f not in explicit]
  values = dict(explicit)
  if missing:
    defaults = KMAX_DATASET_DEFAULTS.get(dataset_name)
    if defaults is None:
      wanted = " ".join(f"{f}: ..." for f in missing)
      raise ConfigError(
          f"dataset {dataset_name!r} has no kMaX-DeepLab defaults (known: "
          f"{', '.join(sorted(KMAX_DATASET_DEFAULTS))}); set them explicitly: "
          f"model_options {{ kmax_deeplab {{ {wanted} }} }}")
    _check_same_defaults(config, dataset_name, missing)
    values.update({f: defaults[f] for f in missing})

  settings = KMaXSettings(
      dataset_name=dataset_name,
      pixel_encoder_name=pixel_encoder_name(model.backbone.name),
      backbone_drop_path_keep_prob=model.backbone.drop_path_keep_prob,
      backbone_input_normalization=model.backbone.input_normalization,
      backbone_pretrained_weights=(
          model.backbone.pretrained_weights or None),
      num_mask_slots=int(values["num_mask_slots"]),
      high_resolution_output_stride=int(
          values["high_resolution_output_stride"]),
      use_auxiliary_semantic_decoder=bool(
          values["use_auxiliary_semantic_decoder"]),
      transformer_decoder_drop_path_keep_prob=_shortest_float(
          values["transformer_decoder_drop_path_keep_prob"]))
  _validate(settings, config)
  return settings


def _shortest_float(value) -> float:
  """0.800000011920929 (a float proto field) -> 0.8, the value as written.

  DeepLab2 passes this keep probability as a Python literal, so the explicit
  field and the dataset default must yield the same number.
  """
  return float(str(np.float32(value)))


def _dataset_of(config) -> str:
  name = (config.train_dataset_options.dataset or
          config.eval_dataset_options.dataset)
  if not name:
    raise ConfigError(
        "neither train_dataset_options.dataset nor eval_dataset_options."
        "dataset is set, so the model's dataset is unknown")
  return name


def _explicit_kmax_fields(model) -> dict:
  kmax = model.kmax_deeplab
  explicit = {f: getattr(kmax, f) for f in _KMAX_FIELDS if kmax.HasField(f)}
  # DeepLab2's ADE20K ConvNeXt-L config puts this one in max_deeplab.
  legacy = model.max_deeplab
  name = "transformer_decoder_drop_path_keep_prob"
  if legacy.HasField(name):
    if name in explicit and explicit[name] != getattr(legacy, name):
      raise ConfigError(
          f"model_options.kmax_deeplab.{name} ({explicit[name]}) and "
          f"model_options.max_deeplab.{name} ({getattr(legacy, name)}) "
          "disagree; set only the kmax_deeplab one")
    explicit.setdefault(name, getattr(legacy, name))
  return explicit


def _check_same_defaults(config, dataset_name, missing) -> None:
  """Train and eval datasets must not imply different architectures."""
  others = {config.train_dataset_options.dataset,
            config.eval_dataset_options.dataset} - {"", dataset_name}
  for other in others:
    other_defaults = KMAX_DATASET_DEFAULTS.get(other)
    differing = [f for f in missing if other_defaults is None or
                 other_defaults[f] != KMAX_DATASET_DEFAULTS[dataset_name][f]]
    if differing:
      raise ConfigError(
          f"the train and eval datasets ({dataset_name!r}, {other!r}) imply "
          f"different defaults for {', '.join(differing)}; set them in "
          "model_options.kmax_deeplab")


def _validate(settings: KMaXSettings, config) -> None:
  where = "model_options.kmax_deeplab"
  if settings.num_mask_slots <= 0:
    raise ConfigError(f"{where}.num_mask_slots must be positive, got "
                      f"{settings.num_mask_slots}")
  if settings.high_resolution_output_stride not in _SUPPORTED_OUTPUT_STRIDES:
    raise ConfigError(
        f"{where}.high_resolution_output_stride must be 4 or 2 (the kMaX "
        f"pixel decoder layouts), got "
        f"{settings.high_resolution_output_stride}")
  for name, value in (
      ("model_options.backbone.drop_path_keep_prob",
       settings.backbone_drop_path_keep_prob),
      (f"{where}.transformer_decoder_drop_path_keep_prob",
       settings.transformer_decoder_drop_path_keep_prob)):
    if not 0.0 < value <= 1.0:
      raise ConfigError(f"{name} must be in (0, 1], got {value}")
  normalization = settings.backbone_input_normalization
  if normalization not in _INPUT_NORMALIZATIONS:
    raise ConfigError(
        "model_options.backbone.input_normalization must be one of "
        f"{_INPUT_NORMALIZATIONS}, got {normalization!r}")
  if normalization != "inception" and settings.pixel_encoder_name not in moat_sizes.MOAT_SIZES:
    raise ConfigError(
        f"model_options.backbone.input_normalization {normalization!r} is only "
        f"available for MOAT encoders, not {settings.pixel_encoder_name!r}")
  head = config.model_options.max_deeplab.auxiliary_semantic_head
  if settings.dataset_name in datasets.dataset_names() and head.HasField(
      "output_channels"):
    num_classes = datasets.get_dataset_descriptor(
        settings.dataset_name).num_classes
    if head.output_channels != num_classes:
      raise ConfigError(
          "model_options.max_deeplab.auxiliary_semantic_head.output_channels "
          f"is {head.output_channels} but dataset {settings.dataset_name!r} "
          f"has {num_classes} classes")
