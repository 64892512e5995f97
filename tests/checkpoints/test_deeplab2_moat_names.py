"""The MOAT name maps against DeepLab2's own listings (tests/testdata/deeplab2_moat)."""
import json
import os

import tensorflow as tf

from kmax_tf.checkpoints import deeplab2_moat_names
from kmax_tf.pixel_encoders import moat
from kmax_tf.pixel_encoders import moat_sizes
from kmax_tf.testing import deeplab2_fixtures as fx


def _built(name):
  encoder = moat.MOAT(**moat_sizes.MOAT_SIZES[name])
  encoder(tf.zeros([1, 33, 33, 3]))
  return encoder


def _manifest_encoder_shapes(model_name):
  return {key[len("encoder/"):-len(fx.VALUE_SUFFIX)]: tuple(shape)
          for key, shape, _, _ in fx.read_manifest(model_name) if key.startswith("encoder/")}


def test_kmax_checkpoint_keys_and_shapes_equal_deeplab2s():
  for model_name, encoder_name in (("coco_tiny_moat0", "tiny_moat0"), ("moat0_no_pe", "moat0_no_pe")):
    mapping = deeplab2_moat_names.deeplab2_variable_map(_built(encoder_name))
    assert {k: tuple(v.shape) for k, v in mapping.items()} == _manifest_encoder_shapes(model_name)


def test_imagenet_names_and_shapes_equal_deeplab2s():
  path = os.path.join(fx.moat_testdata_dir(), "variables", "moat_imagenet_tiny_moat0_names.tsv")
  with open(path) as f:
    expected = {name: tuple(json.loads(shape))
                for name, shape in (line.rstrip("\n").split("\t") for line in f)}
  mapping = deeplab2_moat_names.imagenet_variable_map(_built("tiny_moat0"))
  assert {k: tuple(v.shape) for k, v in mapping.items()} == expected
  no_pe = deeplab2_moat_names.imagenet_variable_map(_built("tiny_moat0_no_pe"))
  assert set(no_pe) == {k for k in expected if not k.endswith("relative_position_embedding")}
