"""BN constants: the config's solver_options reach every kMaX BN layer except MOAT's."""
import os

import pytest
import tf_keras

import kmax_tf
from kmax_tf.config.config_error import ConfigError
from kmax_tf.data import datasets
from kmax_tf.demo import synthetic_panoptic
from kmax_tf.layers import normalization

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(REPO, "configs", "demo", "kmax_demo.textproto")
SMALL = ["train_dataset_options.crop_size=65,65", "eval_dataset_options.crop_size=65,65"]


@pytest.fixture(autouse=True, scope="module")
def demo_dataset():
  descriptor = synthetic_panoptic.descriptor()
  if descriptor.name not in datasets.dataset_names():
    datasets.register_dataset(descriptor)


def _batch_norms(model):
  return [layer for layer in model.submodules
          if isinstance(layer, tf_keras.layers.BatchNormalization)]


def test_context_and_explicit_arguments():
  assert normalization.batch_norm("a").momentum == normalization.BN_MOMENTUM
  with normalization.batch_norm_constants(0.9, 1e-5):
    layer = normalization.batch_norm("b")
    assert (layer.momentum, layer.epsilon) == (0.9, 1e-5)
    explicit = normalization.batch_norm("c", momentum=0.5, epsilon=0.1)
    assert (explicit.momentum, explicit.epsilon) == (0.5, 0.1)
  assert normalization.batch_norm("d").epsilon == normalization.BN_EPSILON
  config = tf_keras.layers.deserialize(tf_keras.layers.serialize(layer)).get_config()
  assert (config["momentum"], config["epsilon"]) == (0.9, 1e-5)


def test_config_constants_reach_every_batch_norm():
  model = kmax_tf.build_model(kmax_tf.load_config(DEMO, SMALL + [
      "trainer_options.solver_options.batchnorm_momentum=0.9",
      "trainer_options.solver_options.batchnorm_epsilon=1e-5"]))
  norms = _batch_norms(model)
  assert len(norms) > 100
  # float32 proto values: 0.9 and 1e-5 to float32 precision.
  assert {(round(n.momentum, 6), round(n.epsilon, 9)) for n in norms} == {(0.9, 1e-5)}
  default = kmax_tf.build_model(kmax_tf.load_config(DEMO, SMALL))
  assert {(round(n.momentum, 6), round(n.epsilon, 9))
          for n in _batch_norms(default)} == {(0.99, 1e-3)}


def test_moat_keeps_keras_defaults_as_deeplab2_does():
  model = kmax_tf.build_model(kmax_tf.load_config(DEMO, SMALL + [
      "model_options.backbone.name=kmax_tiny_moat0_pretrain_256_1k",
      "model_options.backbone.pretrained_weights=",
      "trainer_options.solver_options.batchnorm_momentum=0.9",
      "trainer_options.solver_options.batchnorm_epsilon=1e-5"]))
  encoder = {id(n) for n in _batch_norms(model.pixel_encoder)}
  assert encoder
  for norm in _batch_norms(model):
    expected = (0.99, 1e-3) if id(norm) in encoder else (0.9, 1e-5)
    assert (round(norm.momentum, 6), round(norm.epsilon, 9)) == expected, norm.name


@pytest.mark.parametrize("override,message", [
    ("batchnorm_momentum=1.0", "batchnorm_momentum must be in"),
    ("batchnorm_epsilon=0", "batchnorm_epsilon must be > 0")])
def test_bad_constants_are_refused(override, message):
  config = kmax_tf.load_config(DEMO, SMALL + [f"trainer_options.solver_options.{override}"])
  with pytest.raises(ConfigError, match=message):
    kmax_tf.build_model(config)
