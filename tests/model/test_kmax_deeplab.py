"""kMaX-DeepLab as built from every bundled config: parameter counts, output shapes, config round trip.

Parameter counts are DeepLab2's, counted on DeepLab2's own models built from its
kMaX textprotos (COCO R50 and ConvNeXt-T also in ../shared/docs/deeplab2_measured.md).
"""
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import kmax_tf
from kmax_tf import outputs as keys
from kmax_tf.model import kmax_deeplab
from kmax_tf.testing import deeplab2_fixtures as fx

ROOT = fx.repo_root()

# config -> (total, trainable, total without the auxiliary semantic branch)
PARAMETER_COUNTS = {
    "configs/coco/kmax_r50.textproto": (72_650_796, 72_436_862, 56_787_526),
    "configs/coco/kmax_convnext_tiny.textproto": (67_430_412, None, 61_095_462),
}


def _num_params(variables):
  return int(sum(np.prod(v.shape) for v in variables))


def _build(config_path, size):
  config = kmax_tf.load_config(os.path.join(ROOT, config_path), [
      f"eval_dataset_options.crop_size={size},{size}",
      f"train_dataset_options.crop_size={size},{size}"])
  return kmax_tf.build_model(config)


@pytest.mark.parametrize("config_path", sorted(PARAMETER_COUNTS))
def test_parameter_counts_equal_deeplab2(config_path):
  total, trainable, without_semantic = PARAMETER_COUNTS[config_path]
  model = _build(config_path, 129)
  assert _num_params(model.variables) == total
  if trainable is not None:
    assert _num_params(model.trainable_variables) == trainable
  semantic = model.semantic_head.variables + (
      model.semantic_decoder.variables if model.semantic_decoder is not None else [])
  assert _num_params(model.variables) - _num_params(semantic) == without_semantic


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
