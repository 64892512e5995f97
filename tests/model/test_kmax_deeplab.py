"""kMaX-DeepLab as built from every bundled config: parameter counts, output shapes, config round trip.

Parameter counts are DeepLab2's, counted on DeepLab2's own models built from its
kMaX textprotos (COCO R50 and ConvNeXt-T also in ../shared/docs/deeplab2_measured.md).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import kmax_tf
from kmax_tf import outputs as keys
from kmax_tf.model import kmax_deeplab
from kmax_tf.testing import deeplab2_fixtures as fx

ROOT = fx.repo_root()

# config -> (total, trainable, total without the auxiliary semantic branch), counted on
# DeepLab2's models built from the matching DeepLab2 textprotos.
PARAMETER_COUNTS = {
    "configs/coco/kmax_r50.textproto": (72_650_796, 72_436_862, 56_787_526),
    "configs/coco/kmax_axial_r50.textproto": (90_577_452, 90_272_254, 74_714_182),
    "configs/coco/kmax_convnext_tiny.textproto": (67_430_412, 67_265_502, 61_095_462),
    "configs/coco/kmax_convnext_small.textproto": (89_064_972, 88_900_062, 82_730_022),
    "configs/coco/kmax_convnext_base.textproto": (129_912_300, 129_747_390, 121_671_686),
    "configs/coco/kmax_convnext_large.textproto": (244_047_276, 243_882_366, 231_995_334),
    "configs/cityscapes/kmax_r50.textproto": (57_198_651, 56_986_125, 56_609_064),
    "configs/cityscapes/kmax_axial_r50.textproto": (75_127_483, 74_823_693, 74_537_896),
    "configs/cityscapes/kmax_convnext_tiny.textproto": (61_142_875, 60_981_933, 60_918_088),
    "configs/cityscapes/kmax_convnext_small.textproto": (82_777_435, 82_616_493, 82_552_648),
    "configs/cityscapes/kmax_convnext_base.textproto": (121_793_147, 121_631_693, 121_495_400),
    "configs/cityscapes/kmax_convnext_large.textproto": (232_264_891, 232_102_413, 231_821_224),
    "configs/ade20k/kmax_r50.textproto": (72_685_748, 72_471_814, 56_818_109),
    "configs/ade20k/kmax_r50_res1281.textproto": (72_685_748, 72_471_814, 56_818_109),
    "configs/ade20k/kmax_convnext_large.textproto": (244_082_228, 243_917_318, 232_025_917),
    "configs/ade20k/kmax_convnext_large_res1281.textproto": (244_082_228, 243_917_318, 232_025_917),
    # MOAT encoders (no position embedding): DeepLab2 64bc1c1's KMaXDeepLab built from its
    # ConvNeXt-T (COCO, Cityscapes) / R50 (ADE20K) textprotos with the backbone renamed to
    # kmax_<moat name>_no_pe..., crop 129 (the counts do not depend on the crop).
    "configs/ade20k/kmax_moat0.textproto": (66_742_356, 66_488_870, 60_403_037),
    "configs/ade20k/kmax_moat1.textproto": (80_491_428, 80_179_190, 74_152_109),
    "configs/ade20k/kmax_moat2.textproto": (114_800_692, 114_439_174, 106_555_709),
    "configs/ade20k/kmax_moat3.textproto": (233_813_220, 233_206_710, 223_662_573),
    "configs/ade20k/kmax_moat4.textproto": (530_317_428, 529_450_054, 514_449_789),
    "configs/ade20k/kmax_tiny_moat0.textproto": (37_278_932, 37_084_454, 34_750_941),
    "configs/ade20k/kmax_tiny_moat1.textproto": (39_667_980, 39_466_110, 36_663_573),
    "configs/ade20k/kmax_tiny_moat2.textproto": (45_560_828, 45_344_174, 41_603_589),
    "configs/ade20k/kmax_tiny_moat3.textproto": (57_186_980, 56_948_150, 51_800_493),
    "configs/cityscapes/kmax_moat0.textproto": (60_418_779, 60_169_261, 60_193_992),
    "configs/cityscapes/kmax_moat1.textproto": (74_167_851, 73_859_581, 73_943_064),
    "configs/cityscapes/kmax_moat2.textproto": (106_646_587, 106_288_525, 106_348_840),
    "configs/cityscapes/kmax_moat3.textproto": (223_827_499, 223_223_933, 223_456_792),
    "configs/cityscapes/kmax_moat4.textproto": (514_836_859, 513_970_893, 514_247_272),
    "configs/cityscapes/kmax_tiny_moat0.textproto": (34_618_523, 34_429_101, 34_539_656),
    "configs/cityscapes/kmax_tiny_moat1.textproto": (36_550_819, 36_353_813, 36_453_712),
    "configs/cityscapes/kmax_tiny_moat2.textproto": (41_527_859, 41_315_813, 41_394_272),
    "configs/cityscapes/kmax_tiny_moat3.textproto": (51_780_299, 51_545_693, 51_591_992),
    "configs/coco/kmax_moat0.textproto": (66_707_404, 66_453_918, 60_372_454),
    "configs/coco/kmax_moat1.textproto": (80_456_476, 80_144_238, 74_121_526),
    "configs/coco/kmax_moat2.textproto": (114_765_740, 114_404_222, 106_525_126),
    "configs/coco/kmax_moat3.textproto": (233_778_268, 233_171_758, 223_631_990),
    "configs/coco/kmax_moat4.textproto": (530_282_476, 529_415_102, 514_419_206),
    "configs/coco/kmax_tiny_moat0.textproto": (37_243_980, 37_049_502, 34_720_358),
    "configs/coco/kmax_tiny_moat1.textproto": (39_633_028, 39_431_158, 36_632_990),
    "configs/coco/kmax_tiny_moat2.textproto": (45_525_876, 45_309_222, 41_573_006),
    "configs/coco/kmax_tiny_moat3.textproto": (57_152_028, 56_913_198, 51_769_910),
}


def _num_params(variables):
  return int(sum(np.prod(v.shape) for v in variables))


def _build(config_path, size):
  config = kmax_tf.load_config(os.path.join(ROOT, config_path), [
      f"eval_dataset_options.crop_size={size},{size}",
      f"train_dataset_options.crop_size={size},{size}"])
  return kmax_tf.build_model(config)


# Building the ConvNeXt-B/L variants (120-245M parameters) takes ~30 s each here; they, the
# res1281 configs (same networks as their 641 twins) and the MOAT configs other than
# tiny-MOAT-0 (one per dataset stays in the default suite) run with --run-large.
_LARGE_VARIANTS = ("convnext_base", "convnext_large", "res1281", "kmax_moat",
                   "tiny_moat1", "tiny_moat2", "tiny_moat3")


# Counted in child processes, a few configs each: every model built in a process keeps
# ~0.3-0.45 GB resident after it is deleted (measured; not Python objects, not glibc's
# free lists), and the 16 default-suite builds grew a pytest-xdist worker by 3.6 GB.
_CONFIGS_PER_CHILD = 6
_COUNT_IN_CHILD = r"""
import json, sys
import numpy as np
import kmax_tf
counts = {}
for path in json.loads(sys.argv[1]):
  config = kmax_tf.load_config(path, ["eval_dataset_options.crop_size=129,129",
                                      "train_dataset_options.crop_size=129,129"])
  model = kmax_tf.build_model(config)
  n = lambda vs: int(sum(np.prod(v.shape) for v in vs))
  semantic = model.semantic_head.variables + (
      model.semantic_decoder.variables if model.semantic_decoder is not None else [])
  counts[path] = [n(model.variables), n(model.trainable_variables),
                  n(model.variables) - n(semantic)]
print(json.dumps(counts))
"""


@pytest.fixture(scope="module")
def built_counts(request):
  """(total, trainable, without semantic) of every config this run's count tests ask for."""
  paths = sorted({item.callspec.params["config_path"] for item in request.session.items
                  if item.originalname == "test_parameter_counts_equal_deeplab2"
                  and not item.get_closest_marker("skip")})
  counts = {}
  for start in range(0, len(paths), _CONFIGS_PER_CHILD):
    chunk = paths[start:start + _CONFIGS_PER_CHILD]
    done = subprocess.run([sys.executable, "-c", _COUNT_IN_CHILD, json.dumps(chunk)], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    counts.update(json.loads(done.stdout.strip().splitlines()[-1]))
  return {path: tuple(c) for path, c in counts.items()}


@pytest.mark.parametrize("config_path", [
    pytest.param(p, marks=pytest.mark.large) if any(v in p for v in _LARGE_VARIANTS) else p
    for p in sorted(PARAMETER_COUNTS)])
def test_parameter_counts_equal_deeplab2(config_path, built_counts):
  assert built_counts[config_path] == PARAMETER_COUNTS[config_path]


def test_output_shapes_at_641_and_config_round_trip():
  model = _build("configs/coco/kmax_r50.textproto", 641)
  images = tf_keras.Input([641, 641, 3], batch_size=1)
  out = model(images, training=False, output_keys=keys.RAW_OUTPUTS + keys.POST_PROCESSED_OUTPUTS)
  shapes = {k: tuple(v.shape) for k, v in out.items()}
  assert shapes == {
      keys.SEMANTIC_LOGITS: (1, 161, 161, 134),
      keys.PIXEL_SPACE_MASK_LOGITS: (1, 161, 161, 128),
      keys.TRANSFORMER_CLASS_LOGITS: (1, 128, 134),
      keys.PIXEL_SPACE_NORMALIZED_FEATURE: (1, 161, 161, 128),
      keys.PANOPTIC_PRED: (1, 641, 641),
      keys.SEMANTIC_PRED: (1, 641, 641),
      keys.INSTANCE_PRED: (1, 641, 641),
      keys.INSTANCE_SCORES: (1, 641, 641),
  }
  clone = kmax_deeplab.KMaXDeepLab.from_config(model.get_config())
  clone(tf_keras.Input([641, 641, 3]), training=False, output_keys=keys.RAW_OUTPUTS)
  assert [tuple(v.shape) for v in clone.variables] == [tuple(v.shape) for v in model.variables]
  assert clone.get_config() == model.get_config()


def test_training_outputs_include_six_resized_auxiliary_predictions():
  model = _build("configs/coco/kmax_r50.textproto", 65)
  out = model(tf.zeros([1, 65, 65, 3]), training=True)
  assert set(out) == {keys.SEMANTIC_LOGITS, keys.PIXEL_SPACE_MASK_LOGITS,
                      keys.TRANSFORMER_CLASS_LOGITS, keys.PIXEL_SPACE_NORMALIZED_FEATURE,
                      keys.AUXILIARY_OUTPUTS}
  assert len(out[keys.AUXILIARY_OUTPUTS]) == 6
  for aux in out[keys.AUXILIARY_OUTPUTS]:
    assert aux[keys.PIXEL_SPACE_MASK_LOGITS].shape == out[keys.PIXEL_SPACE_MASK_LOGITS].shape
    assert aux[keys.TRANSFORMER_CLASS_LOGITS].shape == (1, 128, 134)


def test_inference_skips_the_semantic_branch_unless_requested():
  model = _build("configs/coco/kmax_r50.textproto", 65)
  graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(
      tf.TensorSpec([1, 65, 65, 3])).graph
  with_semantic = tf.function(
      lambda x: model(x, training=False, output_keys=(keys.SEMANTIC_LOGITS,))
  ).get_concrete_function(tf.TensorSpec([1, 65, 65, 3])).graph

  decoder_vars = {id(v) for v in model.semantic_decoder.variables}
  used = {id(v) for v in graph.variables}
  used_sem = {id(v) for v in with_semantic.variables}
  assert not decoder_vars & used
  assert decoder_vars <= used_sem


def test_unknown_output_key_is_an_error():
  model = _build("configs/coco/kmax_r50.textproto", 65)
  with pytest.raises(ValueError, match="Unknown output_keys"):
    model(tf.zeros([1, 65, 65, 3]), training=False, output_keys=("panoptic",))


def test_no_layer_below_the_model_is_autograph_converted():
  """Inside tf.function (AutoGraph on), every sub-layer's call runs unconverted.

  AutoGraph marks the code it converted by running it under an ENABLED control
  status; the model's do_not_convert call switches it to DISABLED for everything
  below. The spy records the status seen by the innermost layers of each part.
  """
  from tensorflow.python.autograph.core import ag_ctx  # pylint: disable=g-import-not-at-top
  model = _build("configs/coco/kmax_r50.textproto", 65)
  seen = {}
  parts = {"encoder": model.pixel_encoder, "decoder": model.pixel_decoder,
           "transformer": model.transformer_decoder, "heads": model.mask_class_head,
           "post": model.post_processor}

  def spy(name, call):
    def wrapped(*args, **kwargs):
      seen[name] = ag_ctx.control_status_ctx().status
      return call(*args, **kwargs)
    return wrapped

  for name, part in parts.items():
    part.call = spy(name, part.call)

  @tf.function
  def forward(x):
    if tf.reduce_sum(x) > 0:  # AutoGraph is on in this function: a tensor `if`.
      x = x * 1.0
    return model(x, training=False)

  forward(tf.ones([1, 65, 65, 3]))
  assert seen == {name: ag_ctx.Status.DISABLED for name in parts}
