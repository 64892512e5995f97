"""ResNet-50 pixel encoder vs DeepLab2's `resnet50` (kMaX-DeepLab R50 fixtures).

Parity tolerance: every encoder endpoint within 1e-4 * max|DeepLab2 value|. The
fixture README measures DeepLab2 against itself under other CPU kernels
(oneDNN off, tf.function) at up to 4.8e-5 of max|value| for the whole model;
our encoder measures 1.6e-6 with the default (fusable) BN and 0 (bit-exact)
with synchronized BN, DeepLab2's own BN kernel path.
"""
import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.checkpoints import deeplab2_encoder_names
from kmax_tf.layers import normalization
from kmax_tf.pixel_encoders import resnet50
from kmax_tf.testing import deeplab2_fixtures as fx

PREFIX = "encoder/"
RELATIVE_TOLERANCE = 1e-4
# docs/deeplab2_measured.md: DeepLab2's R50 pixel encoder.
R50_ENCODER_PARAMETERS = 23_561_152


def _build(synchronized=False):
  with normalization.synchronized_batch_norm(synchronized):
    encoder = resnet50.resnet50()
  encoder(tf.zeros([1, 257, 257, 3]), training=False)
  return encoder


def _manifest_encoder_keys(model_name):
  return {key[len(PREFIX):-len(fx.VALUE_SUFFIX)]
          for key, *_ in fx.read_manifest(model_name) if key.startswith(PREFIX)}


@pytest.fixture(scope="module")
def encoder():
  return _build()


@pytest.fixture(scope="module")
def encoder_weights():
  """Manifest values of the encoder variables only (keys relative to 'encoder/')."""
  return {key[len(PREFIX):-len(fx.VALUE_SUFFIX)]: fx.manifest_value(key, shape, mean, std)
          for key, shape, mean, std in fx.read_manifest("coco_r50") if key.startswith(PREFIX)}


@pytest.mark.parametrize("model_name", ["coco_r50", "cityscapes_r50"])
def test_variable_map_keys_equal_manifest(encoder, model_name):
  mapping = deeplab2_encoder_names.deeplab2_variable_map(encoder)
  assert set(mapping) == _manifest_encoder_keys(model_name)
  assert len(mapping) == len(encoder.weights) == 265


def test_parameter_count(encoder):
  assert sum(int(np.prod(v.shape)) for v in encoder.weights) == R50_ENCODER_PARAMETERS
  shapes = {k: tuple(s) for k, s, _, _ in fx.read_manifest("coco_r50")}
  mapping = deeplab2_encoder_names.deeplab2_variable_map(encoder)
  assert all(tuple(v.shape) == shapes[PREFIX + k + fx.VALUE_SUFFIX] for k, v in mapping.items())


@pytest.mark.parametrize("synchronized", [False, True], ids=["default_bn", "synchronized_bn"])
def test_parity_with_deeplab2(encoder_weights, synchronized):
  encoder = _build(synchronized)
  fx.assign_from_manifest(deeplab2_encoder_names.deeplab2_variable_map(encoder), encoder_weights)
  npz = fx.forward_fixture("coco_r50")
  image = npz["input_uint8"].astype(np.float32) / 127.5 - 1.0
  out = encoder(tf.constant(image), training=False)
  for i in range(1, 6):
    expected, actual = fx.compare(npz, f"encoder/stage{i}", out[f"stage{i}"].numpy())
    scale = np.abs(expected).max()
    assert np.abs(expected - actual).max() <= RELATIVE_TOLERANCE * scale, f"stage{i}"
    np.testing.assert_array_equal(out[f"res{i}"], tf.nn.relu(out[f"stage{i}"]))
