"""Strict textproto loading and command-line overrides."""
import glob
import os
import pathlib

import pytest

from kmax_tf import config as kconfig
from kmax_tf.testing import deeplab2_fixtures

_CONFIGS = os.path.join(deeplab2_fixtures.fixtures_dir(), "deeplab2_configs")
DEEPLAB2_CONFIGS = sorted(glob.glob(os.path.join(_CONFIGS, "**", "*.textproto"),
                                    recursive=True))
COCO_R50 = os.path.join(_CONFIGS, "coco", "kmax_deeplab",
                        "kmax_meta_r50_os32.textproto")


def test_all_deeplab2_kmax_configs_are_present():
  assert len(DEEPLAB2_CONFIGS) == 17


@pytest.mark.parametrize("path", DEEPLAB2_CONFIGS,
                         ids=lambda p: os.path.relpath(p, _CONFIGS))
def test_deeplab2_configs_parse_strictly(path):
  config = kconfig.load_config(path)
  assert config.model_options.backbone.name.startswith("kmax_")
  assert config.model_options.HasField("max_deeplab")
  # Nothing was dropped: re-serializing and parsing gives the same message.
  assert kconfig.parse_config(kconfig.config_to_text(config)) == config


def test_deeplab2_values_are_read():
  config = kconfig.load_config(pathlib.Path(COCO_R50))
  assert config.experiment_name == "${EXPERIMENT_NAME}"
  assert list(config.train_dataset_options.crop_size) == [1281, 1281]
  assert config.train_dataset_options.augmentations.panoptic_copy_paste \
      .panoptic_copy_paste_thing_option == "all"
  assert [low.feature_key for low in
          config.model_options.max_deeplab.auxiliary_low_level] == [
              "res3", "res2"]
  assert config.trainer_options.solver_options.optimizer == "adamw"
  assert config.evaluator_options.maskwise_postprocessing \
      .reorder_mask_weight == pytest.approx(1.0)
  assert sorted(kconfig.unresolved_placeholders(config)) == [
      "eval_dataset_options.file_pattern: ${VAL_SET}",
      "experiment_name: ${EXPERIMENT_NAME}",
      "model_options.initial_checkpoint: ${INIT_CHECKPOINT}",
      "train_dataset_options.file_pattern: ${TRAIN_SET}",
  ]


def _write(tmp_path, text, name="bad.textproto"):
  path = tmp_path / name
  path.write_text(text)
  return str(path)


def test_misspelt_field_names_file_line_column_and_field(tmp_path):
  path = _write(tmp_path, (
      "# comment\n"
      "train_dataset_options {\n"
      '  dataset: "coco_panoptic"\n'
      "  bach_size: 2\n"
      "}\n"))
  with pytest.raises(kconfig.ConfigError) as e:
    kconfig.load_config(path)
  message = str(e.value)
  assert message.startswith(f"{path}:4:3: ")
  assert "'bach_size'" in message
  assert "DatasetOptions" in message
  assert "did you mean 'batch_size'" in message
  assert isinstance(e.value, ValueError)


def test_misspelt_nested_message_name(tmp_path):
  path = _write(tmp_path, "model_options {\n  kmax_deeplb {\n  }\n}\n")
  with pytest.raises(kconfig.ConfigError, match=r":2:3: .*'kmax_deeplb'.*"
                     r"did you mean 'kmax_deeplab'"):
    kconfig.load_config(path)


def test_other_deeplab2_meta_architectures_are_rejected(tmp_path):
  path = _write(tmp_path, "model_options {\n  panoptic_deeplab {\n  }\n}\n")
  with pytest.raises(kconfig.ConfigError,
                     match="meta-architecture other than kMaX-DeepLab"):
    kconfig.load_config(path)


def test_repeated_singular_field_and_bad_value_are_errors(tmp_path):
  path = _write(tmp_path, 'experiment_name: "a"\nexperiment_name: "b"\n')
  with pytest.raises(kconfig.ConfigError, match=r"bad.textproto:2:.*"
                     r"experiment_name"):
    kconfig.load_config(path)
  path = _write(tmp_path, "train_dataset_options {\n  batch_size: two\n}\n")
  with pytest.raises(kconfig.ConfigError, match=r"bad.textproto:2:"):
    kconfig.load_config(path)


def test_overrides_scalars_repeated_strings_bools_floats():
  config = kconfig.load_config(COCO_R50, overrides=[
      "train_dataset_options.batch_size=2",
      "train_dataset_options.crop_size=257,257",
      "train_dataset_options.file_pattern=a/*.tfrecord, b/*.tfrecord",
      "experiment_name=smoke",
      'model_options.initial_checkpoint="ckpt/model"',
      "trainer_options.solver_options.use_sync_batchnorm=false",
      "trainer_options.solver_options.base_learning_rate=1e-4",
      "evaluator_options.eval_scales=",
      "model_options.max_deeplab.auxiliary_low_level[1].channels_project=48",
      "model_options.max_deeplab.auxiliary_low_level[2].feature_key=res1",
      "model_options.kmax_deeplab={num_mask_slots: 64 "
      "high_resolution_output_stride: 4}",
  ])
  assert config.train_dataset_options.batch_size == 2
  assert list(config.train_dataset_options.crop_size) == [257, 257]
  assert list(config.train_dataset_options.file_pattern) == [
      "a/*.tfrecord", "b/*.tfrecord"]
  assert config.experiment_name == "smoke"
  assert config.model_options.initial_checkpoint == "ckpt/model"
  assert not config.trainer_options.solver_options.use_sync_batchnorm
  assert config.trainer_options.solver_options.base_learning_rate == (
      pytest.approx(1e-4))
  assert not config.evaluator_options.eval_scales
  lows = config.model_options.max_deeplab.auxiliary_low_level
  assert [(x.feature_key, x.channels_project) for x in lows] == [
      ("res3", 64), ("res2", 48), ("res1", 0)]
  kmax = config.model_options.kmax_deeplab
  assert kmax.num_mask_slots == 64
  assert not kmax.HasField("use_auxiliary_semantic_decoder")
  # The rest of the file is untouched.
  assert config.eval_dataset_options.crop_size == [1281, 1281]


@pytest.mark.parametrize("override,expected", [
    ("train_dataset_options.bach_size=2",
     r"'bach_size'.*DatasetOptions.*did you mean 'batch_size'"),
    ("train_dataset_option.batch_size=2",
     r"'train_dataset_option'.*did you mean 'train_dataset_options'"),
    ("model_options.backbone.drop_path_keep=0.5",
     r"'drop_path_keep'.*did you mean 'drop_path_keep_prob'"),
    ("train_dataset_options.batch_size=two",
     r"cannot set 'batch_size' \(integer\) to 'two'"),
    ("trainer_options.solver_options.use_sync_batchnorm=maybe",
     r"'use_sync_batchnorm' \(bool\)"),
    ("train_dataset_options.batch_size.x=1", r"scalar field"),
    ("model_options.max_deeplab.auxiliary_low_level.feature_key=a",
     r"auxiliary_low_level\[index\]"),
    ("model_options.max_deeplab.auxiliary_low_level[7].feature_key=a",
     r"index 7 out of range"),
    ("model_options.kmax_deeplab={num_mask_slot: 3}",
     r"'num_mask_slot'.*did you mean 'num_mask_slots'"),
    ("experiment_name", r"expected 'dotted.field.path=value'"),
])
def test_bad_overrides_name_the_override_and_component(override, expected):
  with pytest.raises(kconfig.ConfigError, match=expected) as e:
    kconfig.load_config(COCO_R50, overrides=[override])
  assert f"override {override!r}" in str(e.value)


def test_overrides_must_be_a_sequence():
  with pytest.raises(TypeError):
    kconfig.load_config(COCO_R50, overrides="experiment_name=x")
