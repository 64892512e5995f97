"""kmax_tf checkpoints: model-only files and trainer files load; mismatches are errors."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import kmax_tf
from kmax_tf.checkpoints import checkpoint_io
from kmax_tf.checkpoints.deeplab2_checkpoint_reader import CheckpointMismatchError

_CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "coco", "kmax_r50.textproto")


def _model(*overrides, seed=0):
  tf_keras.utils.set_random_seed(seed)
  small = ["eval_dataset_options.crop_size=65,65", "train_dataset_options.crop_size=65,65"]
  return kmax_tf.build_model(kmax_tf.load_config(_CONFIG, small + list(overrides)))


@pytest.fixture(scope="module")
def source():
  return _model(seed=1)


@pytest.fixture(scope="module")
def target():
  return _model(seed=2)


def _assert_same_weights(a, b):
  assert len(a.variables) == len(b.variables)
  for x, y in zip(a.variables, b.variables):
    np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=x.name)


def test_model_checkpoint_round_trip(source, target, tmp_path):
  prefix = checkpoint_io.save_model_checkpoint(source, str(tmp_path / "model"))
  assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp")]
  assert "kmax_tf checkpoint" in checkpoint_io.load_checkpoint(target, prefix)
  _assert_same_weights(source, target)


def test_trainer_checkpoint_with_optimizer_and_step_loads(source, target, tmp_path):
  for v in target.variables:
    v.assign(tf.zeros_like(v))
  optimizer = tf_keras.optimizers.legacy.Adam()
  optimizer.apply_gradients([(tf.zeros_like(v), v) for v in source.trainable_variables])
  step = tf.Variable(7, dtype=tf.int64)
  manager = tf.train.CheckpointManager(
      tf.train.Checkpoint(model=source, optimizer=optimizer, global_step=step),
      str(tmp_path), max_to_keep=1)
  manager.save()
  # A directory resolves to its latest checkpoint.
  checkpoint_io.load_checkpoint(target, str(tmp_path))
  _assert_same_weights(source, target)


def test_checkpoint_of_another_config_is_an_error_and_assigns_nothing(target, tmp_path):
  other = _model("model_options.kmax_deeplab.num_mask_slots=64", seed=3)
  prefix = checkpoint_io.save_model_checkpoint(other, str(tmp_path / "model"))
  before = [v.numpy() for v in target.variables]
  with pytest.raises(CheckpointMismatchError,
                     match=r"does not match.*1 shape mismatch.*cluster_centers"):
    checkpoint_io.load_checkpoint(target, prefix)
  for value, variable in zip(before, target.variables):
    np.testing.assert_array_equal(value, variable.numpy(), err_msg=variable.name)
