"""DeepLab2 checkpoint import: both layouts, backbone-only, and clear mismatch errors.

Checkpoints are rebuilt from the parity-fixture manifests in DeepLab2's format
(../shared/fixtures/deeplab2_parity; listings of the trainer layout in variables/).
"""
import numpy as np
import pytest
import tensorflow as tf

import kmax_tf
from kmax_tf.checkpoints import checkpoint_io
from kmax_tf.checkpoints import deeplab2_checkpoint_reader as reader
from kmax_tf.config import kmax_settings
from kmax_tf.data import custom_panoptic_converter
from kmax_tf.data import datasets
from kmax_tf.testing import deeplab2_checkpoint_writer as writer
from kmax_tf.testing import deeplab2_fixtures as fx
from kmax_tf.testing import parity_models

CROP = 129  # variable shapes do not depend on the crop; small keeps the builds fast


@pytest.fixture(scope="module")
def r50_model():
  return parity_models.build_fixture_model("coco_r50", crop=CROP)


@pytest.fixture(scope="module")
def r50_weights():
  return fx.manifest_weights("coco_r50")


@pytest.fixture(scope="module")
def ckpt_dir(module_scratch):
  return module_scratch.mktemp("deeplab2_ckpts")


def _zero(model):
  for v in model.variables:
    v.assign(tf.zeros_like(v))


def _assert_equal_to_manifest(model, weights, only_prefix=""):
  mapping = model.deeplab2_variable_map()
  checked = 0
  for key, var in mapping.items():
    if key.startswith(only_prefix):
      np.testing.assert_array_equal(var.numpy(), weights[key], err_msg=key)
      checked += 1
  return checked


def test_variable_map_covers_model_and_equals_manifest_keys(r50_model, r50_weights):
  mapping = r50_model.deeplab2_variable_map()
  assert set(mapping) == set(r50_weights)
  assert len(mapping) == len(r50_model.variables) == 1184


@pytest.mark.parametrize("layout,entries", [("model_only", 1185), ("trainer", 2630)])
def test_both_layouts_fill_every_variable(layout, entries, r50_model, r50_weights, ckpt_dir):
  prefix = writer.write_checkpoint("coco_r50", str(ckpt_dir / layout / "ckpt"), layout)
  assert len(tf.train.list_variables(prefix)) == entries
  _zero(r50_model)
  report = kmax_tf.load_deeplab2_checkpoint(r50_model, prefix)
  assert report.layout == layout
  assert report.num_assigned == 1184
  assert report.global_step == (1234 if layout == "trainer" else None)
  assert _assert_equal_to_manifest(r50_model, r50_weights) == 1184


def test_directory_resolves_to_latest_checkpoint(r50_model, ckpt_dir):
  prefix = writer.write_checkpoint("coco_r50", str(ckpt_dir / "dir" / "ckpt-7"), "trainer")
  with open(ckpt_dir / "dir" / "checkpoint", "w") as f:
    f.write('model_checkpoint_path: "ckpt-7"\n')
  assert reader.resolve_checkpoint_path(str(ckpt_dir / "dir")).endswith("ckpt-7")
  assert kmax_tf.load_deeplab2_checkpoint(r50_model, str(ckpt_dir / "dir")).path == prefix


def test_backbone_checkpoint_fills_only_the_encoder(r50_model, r50_weights, ckpt_dir):
  prefix = writer.write_checkpoint("coco_r50", str(ckpt_dir / "bb" / "ckpt"), "backbone")
  _zero(r50_model)
  report = kmax_tf.load_deeplab2_checkpoint(r50_model, prefix)
  assert report.layout == "backbone" and report.num_assigned == 265
  assert _assert_equal_to_manifest(r50_model, r50_weights, "encoder/") == 265
  untouched = r50_model.deeplab2_variable_map()["pixel_decoder/_backbone_norms/0/gamma"]
  assert not np.any(untouched.numpy())


def test_backbone_checkpoint_with_keys_relative_to_encoder(r50_model, r50_weights, ckpt_dir):
  names = [k for k in r50_weights if k.startswith("encoder/")]
  prefix = str(ckpt_dir / "bb_rel" / "ckpt")
  tf.raw_ops.SaveV2(prefix=prefix,
                    tensor_names=[n[len("encoder/"):] + fx.VALUE_SUFFIX for n in names],
                    shape_and_slices=[""] * len(names),
                    tensors=[tf.constant(r50_weights[n]) for n in names])
  _zero(r50_model)
  assert kmax_tf.load_deeplab2_checkpoint(r50_model, prefix).num_assigned == 265
  assert _assert_equal_to_manifest(r50_model, r50_weights, "encoder/") == 265


def test_full_checkpoint_can_be_read_for_the_backbone_alone(r50_model, r50_weights, ckpt_dir):
  prefix = writer.write_checkpoint("coco_r50", str(ckpt_dir / "full" / "ckpt"))
  _zero(r50_model)
  report = kmax_tf.load_deeplab2_checkpoint(r50_model, prefix, backbone_only=True)
  assert report.num_assigned == 265
  assert _assert_equal_to_manifest(r50_model, r50_weights, "encoder/") == 265


def test_other_backbone_is_rejected_with_the_unmatched_names(r50_model, ckpt_dir):
  prefix = writer.write_checkpoint("coco_convnext_tiny", str(ckpt_dir / "cnx" / "ckpt"))
  _zero(r50_model)
  with pytest.raises(reader.CheckpointMismatchError) as err:
    kmax_tf.load_deeplab2_checkpoint(r50_model, prefix)
  message = str(err.value)
  # The 265 R50 encoder names are missing; the 178 ConvNeXt-T encoder names and 5
  # skip-connection projections that only the ConvNeXt channel widths need are unknown.
  assert "model variables with no checkpoint entry 265:" in message
  assert "encoder/_stage2/_block1/_conv1_bn_act/_batch_norm/beta" in message
  assert "checkpoint entries the model does not have 183:" in message
  assert "encoder/downsample_layers/0/layer_with_weights-0/bias" in message
  # Nothing was assigned: the check happens before any write.
  assert not any(np.any(v.numpy()) for v in r50_model.variables)


def test_other_dataset_checkpoint_names_what_differs_and_assigns_nothing(ckpt_dir):
  city = parity_models.build_fixture_model("cityscapes_r50", crop=CROP)
  _zero(city)
  coco_prefix = writer.write_checkpoint("coco_r50", str(ckpt_dir / "coco" / "ckpt"))
  # Same backbone, other dataset: class count (134 vs 20 incl. void), the auxiliary
  # semantic branch and the decoder's output stride differ.
  with pytest.raises(reader.CheckpointMismatchError) as err:
    kmax_tf.load_deeplab2_checkpoint(city, coco_prefix)
  message = str(err.value)
  assert "model variables with no checkpoint entry 32:" in message
  assert "checkpoint entries the model does not have 60:" in message
  assert "shape mismatches 29:" in message
  assert "transformer_class_head/_conv/kernel: checkpoint [1, 256, 134] vs model [1, 256, 20]" in message
  assert "semantic_last_layer/bias: checkpoint [134] vs model [19]" in message
  assert "class-dependent last layers differ" in message and "skip_class_layers=True" in message
  assert not any(np.any(v.numpy()) for v in city.variables)


def test_class_layers_skipped_for_fine_tuning(tmp_path, r50_weights, monkeypatch):
  # COCO R50 weights into a COCO R50 model for a custom dataset of 20 classes (21
  # with void, against COCO's 134): only the class-dependent last layers differ.
  categories = [{"id": i + 1, "name": f"class{i}", "isthing": int(i < 12)} for i in range(20)]
  descriptor = custom_panoptic_converter.descriptor_from_categories(
      "checkpoint_reader_test_20_classes", categories)
  # Registered for this test only: other tests list the registry.
  monkeypatch.setattr(datasets, "_REGISTRY", dict(datasets._REGISTRY))  # pylint: disable=protected-access
  datasets.register_dataset(descriptor, overwrite=True)
  config = parity_models.fixture_config("coco_r50", CROP)
  settings = kmax_settings.resolve_kmax_settings(config)
  for split in (config.train_dataset_options, config.eval_dataset_options):
    split.dataset = descriptor.name
  # The kMaX settings COCO's defaults gave, now explicit: the custom dataset has none.
  kmax = config.model_options.kmax_deeplab
  for field in ("num_mask_slots", "high_resolution_output_stride",
                "use_auxiliary_semantic_decoder", "transformer_decoder_drop_path_keep_prob"):
    setattr(kmax, field, getattr(settings, field))
  config.model_options.max_deeplab.auxiliary_semantic_head.output_channels = 21
  model = kmax_tf.build_model(config)
  keys_ = [k for k in model.deeplab2_variable_map() if reader.is_class_dependent(k)]
  assert len(keys_) == 2 * 7 + 2  # 7 class heads (kernel, bias) + semantic last layer
  prefix = writer.write_checkpoint("coco_r50", str(tmp_path / "ckpt"))
  with pytest.raises(reader.CheckpointMismatchError, match="class-dependent last layers differ"):
    kmax_tf.load_deeplab2_checkpoint(model, prefix)
  report = kmax_tf.load_deeplab2_checkpoint(model, prefix, skip_class_layers=True)
  assert report.num_assigned == 1184 - len(keys_)
  assert set(report.skipped) == set(keys_)
  mapping = model.deeplab2_variable_map()
  for key in keys_:
    # The model's class layers really have another shape than COCO's.
    assert mapping[key].shape[-1] == 21
    assert r50_weights[key].shape[-1] == 134
  for key in set(mapping) - set(keys_):
    np.testing.assert_array_equal(mapping[key].numpy(), r50_weights[key], err_msg=key)


def test_our_checkpoint_round_trip(r50_model, r50_weights, ckpt_dir):
  prefix = writer.write_checkpoint("coco_r50", str(ckpt_dir / "rt" / "ckpt"))
  kmax_tf.load_deeplab2_checkpoint(r50_model, prefix)
  ours = checkpoint_io.save_model_checkpoint(r50_model, str(ckpt_dir / "ours" / "kmax"))
  assert not checkpoint_io.is_deeplab2_checkpoint(ours)
  _zero(r50_model)
  assert "kmax_tf checkpoint" in checkpoint_io.load_checkpoint(r50_model, ours)
  assert _assert_equal_to_manifest(r50_model, r50_weights) == 1184
