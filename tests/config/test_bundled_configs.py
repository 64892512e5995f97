"""The bundled configs/ parse, document themselves and match DeepLab2's."""
import os

import pytest

from kmax_tf import config as kconfig
from kmax_tf.testing import deeplab2_fixtures

ROOT = deeplab2_fixtures.repo_root()
_DEEPLAB2 = os.path.join(deeplab2_fixtures.fixtures_dir(), "deeplab2_configs")

# Our config -> DeepLab2 config with the same hyper-parameters.
CONFIGS = {
    f"configs/{dataset}/kmax_{ours}.textproto":
        f"{dataset}/kmax_deeplab/kmax_meta_{theirs}.textproto"
    for dataset, variants in {
        "coco": ("r50", "axial_r50", "convnext_tiny", "convnext_small",
                 "convnext_base", "convnext_large"),
        "cityscapes": ("r50", "axial_r50", "convnext_tiny", "convnext_small",
                       "convnext_base", "convnext_large"),
        "ade20k": ("r50", "convnext_large", "r50_res1281",
                   "convnext_large_res1281"),
    }.items()
    for ours in variants
    for theirs in [ours.replace("_res1281", "_os32_res1281")
                   if ours.endswith("_res1281") else ours + "_os32"]
}
_KMAX_FIELDS = ("num_mask_slots", "high_resolution_output_stride",
                "use_auxiliary_semantic_decoder",
                "transformer_decoder_drop_path_keep_prob")


# MOAT configs (DeepLab2 has none): DeepLab2's config for the dataset with the
# backbone replaced; our config -> (DeepLab2 base config, encoder, survival
# probability, input normalization).
_MOAT_BASES = {
    "coco": "coco/kmax_deeplab/kmax_meta_convnext_tiny_os32.textproto",
    "cityscapes": "cityscapes/kmax_deeplab/kmax_meta_convnext_tiny_os32.textproto",
    "ade20k": "ade20k/kmax_deeplab/kmax_meta_r50_os32.textproto",
}
_MOAT_SURVIVAL = {"moat0": 0.8, "moat1": 0.7, "moat2": 0.7, "moat3": 0.4, "moat4": 0.3,
                  "tiny_moat0": 1.0, "tiny_moat1": 1.0, "tiny_moat2": 1.0, "tiny_moat3": 0.9}
MOAT_CONFIGS = {
    f"configs/{dataset}/kmax_{size}.textproto": (
        base, f"{size}_no_pe", keep,
        "inception" if size in ("moat2", "moat3", "moat4") else "imagenet")
    for dataset, base in _MOAT_BASES.items()
    for size, keep in _MOAT_SURVIVAL.items()
}

# The Quickstart demo's config: trains on generated data, no DeepLab2 twin.
DEMO_CONFIG = "configs/demo/kmax_demo.textproto"


def test_configs_directory_holds_exactly_the_model_zoo_and_the_demo():
  found = set()
  for dirpath, _, files in os.walk(os.path.join(ROOT, "configs")):
    found.update(os.path.relpath(os.path.join(dirpath, f), ROOT)
                 for f in files if f.endswith(".textproto"))
  assert found == set(CONFIGS) | set(MOAT_CONFIGS) | {DEMO_CONFIG}
  assert "configs/coco/kmax_r50.textproto" in found  # Named in the README.


def test_demo_config_documents_itself_and_parses():
  text = "\n".join(_header(os.path.join(ROOT, DEMO_CONFIG)))
  assert "python -m kmax_tf.demo" in text
  assert f"python trainer.py --config_file={DEMO_CONFIG}" in text
  assert "# Hardware:" in text and "2 CPU cores" in text
  assert "# Expected result: PQ" in text
  config = kconfig.load_config(os.path.join(ROOT, DEMO_CONFIG))
  assert config.model_options.kmax_deeplab.num_mask_slots == 8


def _header(path):
  lines = []
  with open(path) as f:
    for line in f:
      if not line.startswith("#"):
        break
      lines.append(line.rstrip("\n"))
  return lines


@pytest.mark.parametrize("rel", sorted(CONFIGS))
def test_config_starts_with_documentation(rel):
  header = _header(os.path.join(ROOT, rel))
  assert header and header[0].startswith("# Trains kMaX-DeepLab")
  text = "\n".join(header)
  assert f"python trainer.py --config_file={rel}\n" in text
  assert "# Hardware:" in text and "TPU cores" in text
  assert "# Expected result" in text and " PQ " in text
  assert f"--config_file={rel}" in text.split(
      "kmax_tf.tools.import_deeplab2_checkpoint")[1]
  assert "# proto-message: kmax_tf.ExperimentOptions" in text


def _strip_local(config):
  """Clears what legitimately differs: names, paths and explicit settings."""
  config.ClearField("experiment_name")
  for dataset in (config.train_dataset_options, config.eval_dataset_options):
    dataset.ClearField("file_pattern")
  model = config.model_options
  model.ClearField("initial_checkpoint")
  model.backbone.ClearField("pretrained_weights")
  model.ClearField("kmax_deeplab")
  model.max_deeplab.ClearField("transformer_decoder_drop_path_keep_prob")
  return config


@pytest.mark.parametrize("rel", sorted(CONFIGS))
def test_config_matches_deeplab2_hyper_parameters(rel):
  ours = kconfig.load_config(os.path.join(ROOT, rel))
  theirs = kconfig.load_config(os.path.join(_DEEPLAB2, CONFIGS[rel]))
  assert not kconfig.unresolved_placeholders(ours)
  assert ours.model_options.initial_checkpoint == ""
  for pattern in (list(ours.train_dataset_options.file_pattern) +
                  list(ours.eval_dataset_options.file_pattern)):
    assert pattern.startswith("data/") and pattern.endswith(".tfrecord")
  kmax = ours.model_options.kmax_deeplab
  assert all(kmax.HasField(f) for f in _KMAX_FIELDS)

  our_settings = kconfig.resolve_kmax_settings(ours)
  their_settings = kconfig.resolve_kmax_settings(theirs)
  assert our_settings == type(their_settings)(**{
      **their_settings.__dict__, "backbone_pretrained_weights": None})
  assert _strip_local(ours) == _strip_local(theirs)


@pytest.mark.parametrize("rel", sorted(MOAT_CONFIGS))
def test_moat_config_documents_itself(rel):
  text = "\n".join(_header(os.path.join(ROOT, rel)))
  assert text.startswith("# Trains kMaX-DeepLab (backbone: ")
  assert f"python trainer.py --config_file={rel}\n" in text
  assert "# Hardware: sized for 32 TPU cores" in text
  assert "# Expected result: none stated." in text
  assert f"--config_file={rel}" in text.split("kmax_tf.tools.import_deeplab2_checkpoint")[1]
  assert "# proto-message: kmax_tf.ExperimentOptions" in text


@pytest.mark.parametrize("rel", sorted(MOAT_CONFIGS))
def test_moat_config_is_deeplab2_config_with_moat_backbone(rel):
  base, encoder, keep, normalization = MOAT_CONFIGS[rel]
  ours = kconfig.load_config(os.path.join(ROOT, rel))
  theirs = kconfig.load_config(os.path.join(_DEEPLAB2, base))
  assert not kconfig.unresolved_placeholders(ours)
  settings = kconfig.resolve_kmax_settings(ours)
  assert settings.pixel_encoder_name == encoder
  assert settings.backbone_drop_path_keep_prob == pytest.approx(keep)
  assert settings.backbone_input_normalization == normalization
  assert settings.backbone_pretrained_weights is None
  for config in (ours, theirs):
    config.model_options.backbone.ClearField("name")
    config.model_options.backbone.ClearField("drop_path_keep_prob")
    config.model_options.backbone.ClearField("input_normalization")
  assert _strip_local(ours) == _strip_local(theirs)
