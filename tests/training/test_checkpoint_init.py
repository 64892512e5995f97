"""Tests of kmax_tf.training.checkpoint_init: initial checkpoints and class-count checks.

kMaX-DeepLab: Yu et al., ECCV 2022. A small tf.Module stands in for the model:
checkpoint_init only needs `variables`, `deeplab2_variable_map()` and the
object graph tf.train.Checkpoint writes.
"""
import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.checkpoints import checkpoint_io
from kmax_tf.checkpoints.deeplab2_checkpoint_reader import CheckpointMismatchError
from kmax_tf.training import checkpoint_init


class _Head(tf.Module):
  def __init__(self, classes, value):
    super().__init__()
    self.kernel = tf.Variable(np.full([4, classes], value, np.float32))


class _TinyModel(tf.Module):
  def __init__(self, classes, value):
    super().__init__()
    self.backbone = _Head(3, value)
    self.semantic_head = _Head(classes, value)
    self.class_head = _Head(classes + 1, value)

  def deeplab2_variable_map(self):
    return {"encoder/_stem/_conv/kernel": self.backbone.kernel,
            "semantic_last_layer/_conv/kernel": self.semantic_head.kernel,
            "transformer_class_head/_conv/kernel": self.class_head.kernel}


def _trainer_checkpoint(tmp_path, classes):
  model = _TinyModel(classes, 1.0)
  optimizer_state = tf.Variable(3.0)
  return tf.train.Checkpoint(model=model, global_step=tf.Variable(5, dtype=tf.int64),
                             optimizer=tf.train.Checkpoint(v=optimizer_state)).write(
                                 str(tmp_path / "ckpt-5"))


def test_variable_keys_follow_the_object_graph(tmp_path):
  path = _trainer_checkpoint(tmp_path, 7)
  reader = tf.train.load_checkpoint(path)
  assert checkpoint_io.is_kmax_tf_checkpoint(reader)
  model = _TinyModel(7, 0.0)
  keys = checkpoint_io.model_variable_keys(model, reader)
  assert keys[id(model.backbone.kernel)] == "model/backbone/kernel/.ATTRIBUTES/VARIABLE_VALUE"
  assert len(keys) == 3


def test_same_class_count_restores_everything(tmp_path):
  path = _trainer_checkpoint(tmp_path, 7)
  model = _TinyModel(7, 0.0)
  checkpoint_init.check_same_classes(model, path, 7, "demo")
  description = checkpoint_init.initialize_from_checkpoint(model, path)
  assert "3 variables" in description and "re-initialized" not in description
  for variable in model.variables:
    np.testing.assert_array_equal(variable.numpy(), 1.0)


def test_other_class_count_is_an_error_when_resuming(tmp_path):
  path = _trainer_checkpoint(tmp_path, 7)
  with pytest.raises(CheckpointMismatchError,
                     match=r"trained for a different number of classes than the config's "
                           r"dataset 'other' \(5 classes including void\): 7 output channels "
                           r"in the checkpoint, 5 in the model") as error:
    checkpoint_init.check_same_classes(_TinyModel(5, 0.0), path, 5, "other")
  assert "initial_checkpoint" in str(error.value)


def test_other_class_count_reinitializes_class_layers_when_fine_tuning(tmp_path):
  path = _trainer_checkpoint(tmp_path, 7)
  model = _TinyModel(5, 0.0)
  description = checkpoint_init.initialize_from_checkpoint(model, path)
  assert "class layers re-initialized" in description
  np.testing.assert_array_equal(model.backbone.kernel.numpy(), 1.0)
  np.testing.assert_array_equal(model.semantic_head.kernel.numpy(), 0.0)
  np.testing.assert_array_equal(model.class_head.kernel.numpy(), 0.0)


def test_missing_variables_are_listed(tmp_path):
  model = _TinyModel(7, 1.0)
  path = tf.train.Checkpoint(model=tf.train.Checkpoint(backbone=model.backbone)).write(
      str(tmp_path / "partial"))
  with pytest.raises(CheckpointMismatchError, match="2 model variable"):
    checkpoint_init.initialize_from_checkpoint(_TinyModel(7, 0.0), path)
