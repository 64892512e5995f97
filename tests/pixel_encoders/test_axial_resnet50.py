"""Axial-ResNet-50 pixel encoder vs DeepLab2's `axial_resnet50` (coco_axial_r50).

Parity tolerance: every encoder endpoint within 1e-4 * max|DeepLab2 value| (the
fixture README's cross-kernel noise of DeepLab2 itself reaches 3.9e-5 of
max|value| for this model). Measured: 2.0e-6 with the default (fusable) BN and
0 (bit-exact) with synchronized BN, DeepLab2's own BN kernel path.
"""
import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.checkpoints import deeplab2_encoder_names
from kmax_tf.layers import normalization
from kmax_tf.pixel_encoders import axial_resnet50
from kmax_tf.testing import deeplab2_fixtures as fx

MODEL = "coco_axial_r50"
PREFIX = "encoder/"
RELATIVE_TOLERANCE = 1e-4
# Sum over the fixture manifest's 'encoder/' shapes.
AXIAL_R50_ENCODER_PARAMETERS = 41_487_808


def _build(synchronized=False):
  with normalization.synchronized_batch_norm(synchronized):
    encoder = axial_resnet50.axial_resnet50()
  encoder(tf.zeros([1, 257, 257, 3]), training=False)
  return encoder


@pytest.fixture(scope="module")
def encoder():
  return _build()


@pytest.fixture(scope="module")
def encoder_weights():
  """Manifest values of the encoder variables only (keys relative to 'encoder/')."""
  return {key[len(PREFIX):-len(fx.VALUE_SUFFIX)]: fx.manifest_value(key, shape, mean, std)
          for key, shape, mean, std in fx.read_manifest(MODEL) if key.startswith(PREFIX)}


def test_variable_map_keys_equal_manifest(encoder):
  mapping = deeplab2_encoder_names.deeplab2_variable_map(encoder)
  manifest = {key[len(PREFIX):-len(fx.VALUE_SUFFIX)]: shape
              for key, shape, _, _ in fx.read_manifest(MODEL) if key.startswith(PREFIX)}
  assert set(mapping) == set(manifest)
  assert len(mapping) == len(encoder.weights) == 491
  assert all(tuple(v.shape) == manifest[k] for k, v in mapping.items())


def test_parameter_count(encoder):
  manifest_count = sum(int(np.prod(shape)) for key, shape, _, _ in fx.read_manifest(MODEL)
                       if key.startswith(PREFIX))
  assert manifest_count == AXIAL_R50_ENCODER_PARAMETERS
  assert sum(int(np.prod(v.shape)) for v in encoder.weights) == AXIAL_R50_ENCODER_PARAMETERS


@pytest.mark.parametrize("synchronized", [False, True], ids=["default_bn", "synchronized_bn"])
def test_parity_with_deeplab2(encoder_weights, synchronized):
  encoder = _build(synchronized)
  fx.assign_from_manifest(deeplab2_encoder_names.deeplab2_variable_map(encoder), encoder_weights)
  npz = fx.forward_fixture(MODEL)
  image = npz["input_uint8"].astype(np.float32) / 127.5 - 1.0
  out = encoder(tf.constant(image), training=False)
  gelu = lambda t: tf.nn.gelu(t, approximate=False)
  for i in range(1, 6):
    expected, actual = fx.compare(npz, f"encoder/stage{i}", out[f"stage{i}"].numpy())
    scale = np.abs(expected).max()
    assert np.abs(expected - actual).max() <= RELATIVE_TOLERANCE * scale, f"stage{i}"
    np.testing.assert_array_equal(out[f"res{i}"], gelu(out[f"stage{i}"]))
