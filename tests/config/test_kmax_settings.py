"""Explicit kMaX settings resolved from configs and per-dataset defaults."""
import dataclasses
import os

import pytest

from kmax_tf import config as kconfig
from kmax_tf.testing import deeplab2_fixtures

_CONFIGS = os.path.join(deeplab2_fixtures.fixtures_dir(), "deeplab2_configs")


def _deeplab2(dataset, name):
  return kconfig.load_config(
      os.path.join(_CONFIGS, dataset, "kmax_deeplab", name + ".textproto"))


def _config(text):
  return kconfig.parse_config(text)


# What DeepLab2's kmax_deeplab.py derives from the dataset name.
@pytest.mark.parametrize("dataset,name,expected", [
    ("coco", "kmax_meta_r50_os32", (128, 4, True, 0.8)),
    ("coco", "kmax_meta_convnext_large_os32", (128, 4, True, 0.8)),
    ("cityscapes", "kmax_meta_r50_os32", (256, 2, False, 0.8)),
    ("cityscapes", "kmax_meta_axial_r50_os32", (256, 2, False, 0.8)),
    ("ade20k", "kmax_meta_r50_os32", (128, 4, True, 1.0)),
    ("ade20k", "kmax_meta_convnext_large_os32", (128, 4, True, 1.0)),
])
def test_dataset_defaults_for_deeplab2_configs(dataset, name, expected):
  settings = kconfig.resolve_kmax_settings(_deeplab2(dataset, name))
  assert (settings.num_mask_slots, settings.high_resolution_output_stride,
          settings.use_auxiliary_semantic_decoder) == expected[:3]
  assert settings.transformer_decoder_drop_path_keep_prob == (
      pytest.approx(expected[3]))


def test_backbone_and_dataset_settings():
  settings = kconfig.resolve_kmax_settings(
      _deeplab2("coco", "kmax_meta_convnext_tiny_os32"))
  assert settings.dataset_name == "coco_panoptic"
  assert settings.pixel_encoder_name == "convnext_tiny"
  assert settings.backbone_drop_path_keep_prob == pytest.approx(0.7)
  assert settings.backbone_pretrained_weights == "${PRETRAINED_WEIGHTS}"
  settings = kconfig.resolve_kmax_settings(
      _deeplab2("coco", "kmax_meta_r50_os32"))
  assert settings.backbone_pretrained_weights is None
  with pytest.raises(dataclasses.FrozenInstanceError):
    settings.num_mask_slots = 1


@pytest.mark.parametrize("name,expected", [
    ("kmax_resnet50", "resnet50"),
    ("kmax_axial_resnet50", "axial_resnet50"),
    ("kmax_axial_resnet_50", "axial_resnet50"),
    ("kmax_convnext_tiny", "convnext_tiny"),
    ("kmax_convnext_small", "convnext_small"),
    ("kmax_convnext_base", "convnext_base"),
    ("KMAX_ConvNeXt_Large", "convnext_large"),
])
def test_pixel_encoder_names(name, expected):
  assert kconfig.pixel_encoder_name(name) == expected


@pytest.mark.parametrize("name,expected", [
    ("kmax_tiny_moat0_pretrain_256_1k", "tiny_moat0"),
    ("tiny_moat3_pretrain_256_no_pe_1k", "tiny_moat3_no_pe"),
    ("kmax_moat0_pretrain_224_no_pe_1k", "moat0_no_pe"),
    ("KMAX_MOAT2_finetune_384_no_pe_22k", "moat2_no_pe"),
    ("kmax_moat4_finetune_512_22k", "moat4"),
])
def test_deeplab2_moat_names(name, expected):
  assert kconfig.pixel_encoder_name(name) == expected


def test_input_normalization():
  text = """
      model_options { backbone { name: "%s" %s } }
      train_dataset_options { dataset: "coco_panoptic" }"""
  default = kconfig.resolve_kmax_settings(_config(text % ("kmax_tiny_moat0_pretrain_256_1k", "")))
  assert default.backbone_input_normalization == "inception"
  imagenet = kconfig.resolve_kmax_settings(_config(
      text % ("kmax_tiny_moat0_pretrain_256_1k", 'input_normalization: "imagenet"')))
  assert imagenet.backbone_input_normalization == "imagenet"
  with pytest.raises(kconfig.ConfigError, match="only available for MOAT"):
    kconfig.resolve_kmax_settings(_config(
        text % ("kmax_resnet50", 'input_normalization: "imagenet"')))
  with pytest.raises(kconfig.ConfigError, match="must be one of"):
    kconfig.resolve_kmax_settings(_config(
        text % ("kmax_moat0_pretrain_224_1k", 'input_normalization: "caffe"')))


def test_backbone_without_kmax_prefix_or_unknown_is_an_error():
  with pytest.raises(kconfig.ConfigError, match="'kmax_resnet50'"):
    kconfig.pixel_encoder_name("resnet50")
  with pytest.raises(kconfig.ConfigError, match="not a supported"):
    kconfig.pixel_encoder_name("kmax_moat0")


def test_explicit_fields_win_over_dataset_defaults():
  settings = kconfig.resolve_kmax_settings(_config("""
      model_options { backbone { name: "kmax_resnet50" }
        kmax_deeplab { num_mask_slots: 64 use_auxiliary_semantic_decoder: false }
      }
      train_dataset_options { dataset: "coco_panoptic" }"""))
  assert settings.num_mask_slots == 64
  assert settings.use_auxiliary_semantic_decoder is False
  assert settings.high_resolution_output_stride == 4  # COCO default.


def test_unknown_dataset_requires_explicit_fields():
  text = """
      model_options { backbone { name: "kmax_resnet50" } %s }
      train_dataset_options { dataset: "my_dataset" }"""
  with pytest.raises(kconfig.ConfigError) as e:
    kconfig.resolve_kmax_settings(_config(text % (
        "kmax_deeplab { num_mask_slots: 100 }")))
  message = str(e.value)
  assert "'my_dataset' has no kMaX-DeepLab defaults" in message
  for field in ("high_resolution_output_stride",
                "use_auxiliary_semantic_decoder",
                "transformer_decoder_drop_path_keep_prob"):
    assert field in message
  assert "num_mask_slots" not in message
  settings = kconfig.resolve_kmax_settings(_config(text % (
      "kmax_deeplab { num_mask_slots: 100 high_resolution_output_stride: 2 "
      "use_auxiliary_semantic_decoder: true "
      "transformer_decoder_drop_path_keep_prob: 0.9 }")))
  assert (settings.dataset_name, settings.num_mask_slots) == ("my_dataset", 100)


def test_dataset_choice_and_train_eval_disagreement():
  base = 'model_options { backbone { name: "kmax_resnet50" } } '
  settings = kconfig.resolve_kmax_settings(_config(
      base + 'eval_dataset_options { dataset: "cityscapes_panoptic" }'))
  assert settings.num_mask_slots == 256
  mixed = _config(base + 'train_dataset_options { dataset: "coco_panoptic" } '
                  'eval_dataset_options { dataset: "cityscapes_panoptic" }')
  with pytest.raises(kconfig.ConfigError, match="imply different defaults"):
    kconfig.resolve_kmax_settings(mixed)
  kconfig.apply_overrides(mixed, [
      "model_options.kmax_deeplab={num_mask_slots: 128 "
      "high_resolution_output_stride: 4 use_auxiliary_semantic_decoder: true "
      "transformer_decoder_drop_path_keep_prob: 0.8}"])
  assert kconfig.resolve_kmax_settings(mixed).num_mask_slots == 128
  with pytest.raises(kconfig.ConfigError, match="dataset is unknown"):
    kconfig.resolve_kmax_settings(_config(base))
  assert kconfig.resolve_kmax_settings(
      _config(base), dataset_name="ade20k_panoptic").num_mask_slots == 128


def test_legacy_max_deeplab_drop_path_field():
  text = """
      model_options { backbone { name: "kmax_resnet50" }
        max_deeplab { transformer_decoder_drop_path_keep_prob: 0.5 } %s }
      train_dataset_options { dataset: "coco_panoptic" }"""
  assert kconfig.resolve_kmax_settings(_config(text % "")) \
      .transformer_decoder_drop_path_keep_prob == pytest.approx(0.5)
  with pytest.raises(kconfig.ConfigError, match="disagree"):
    kconfig.resolve_kmax_settings(_config(text % (
        "kmax_deeplab { transformer_decoder_drop_path_keep_prob: 0.7 }")))


@pytest.mark.parametrize("kmax,expected", [
    ("num_mask_slots: 0", "num_mask_slots must be positive"),
    ("high_resolution_output_stride: 8", "must be 4 or 2"),
    ("transformer_decoder_drop_path_keep_prob: 0", r"must be in \(0, 1\]"),
])
def test_invalid_values(kmax, expected):
  with pytest.raises(kconfig.ConfigError, match=expected):
    kconfig.resolve_kmax_settings(_config(
        'model_options { backbone { name: "kmax_resnet50" } '
        'kmax_deeplab { %s } } '
        'train_dataset_options { dataset: "coco_panoptic" }' % kmax))


def test_semantic_head_channels_must_match_dataset():
  config = _deeplab2("coco", "kmax_meta_r50_os32")
  config.train_dataset_options.dataset = "cityscapes_panoptic"
  config.eval_dataset_options.dataset = "cityscapes_panoptic"
  with pytest.raises(kconfig.ConfigError, match="output_channels is 134 but "
                     "dataset 'cityscapes_panoptic' has 19 classes"):
    kconfig.resolve_kmax_settings(config)
