"""Tests of MaskClassHead, the MaX-DeepLab / kMaX-DeepLab mask and class head
(Wang et al., CVPR 2021; Yu et al., ECCV 2022)."""
import math

import numpy as np
import pytest
import tensorflow as tf

from kmax_tf import outputs
from kmax_tf.checkpoints import deeplab2_mask_class_head_names as names
from kmax_tf.heads.mask_class_head import MaskClassHead
from kmax_tf.testing import deeplab2_fixtures as fx

# The DeepLab2 top-level checkpoint items of the final predictor (without the
# auxiliary semantic branch).
HEAD_ITEMS = ("pixel_space_head/", "transformer_mask_head/", "transformer_class_head/",
              "pixel_space_feature_batch_norm/", "pixel_space_mask_batch_norm/")
SEMANTIC_HEAD_ITEMS = ("semantic_head_without_last_layer/", "semantic_last_layer/")
# shared/docs/deeplab2_measured.md, COCO R50: all prediction heads, and the
# auxiliary semantic decoder among them.
PREDICTION_HEADS_PARAMS = 16_038_384
SEMANTIC_DECODER_PARAMS = 15_754_848
NUM_CLASSES = {"coco_r50": 134, "cityscapes_r50": 20}
# Channels of the pixel decoder's decoder_output (stride 4 COCO, stride 2 Cityscapes).
PIXEL_CHANNELS = {"coco_r50": 256, "cityscapes_r50": 128}


def _inputs(batch=1, size=9, channels=256, slots=128, seed=0):
  return {
      outputs.FEATURE_PANOPTIC: tf.random.stateless_normal([batch, size, size, channels], [seed, 1]),
      outputs.TRANSFORMER_CLASS_FEATURE: tf.random.stateless_normal([batch, slots, 256], [seed, 2]),
      outputs.TRANSFORMER_MASK_FEATURE: tf.random.stateless_normal([batch, slots, 256], [seed, 3]),
  }


def _head_weights(model):
  return {k: v for k, v in fx.manifest_weights(model).items() if k.startswith(HEAD_ITEMS)}


@pytest.mark.parametrize("model", sorted(NUM_CLASSES))
def test_variable_map_equals_manifest_keys(model):
  head = MaskClassHead(NUM_CLASSES[model])
  head(_inputs(channels=PIXEL_CHANNELS[model]))
  mapping = names.deeplab2_variable_map(head)
  weights = _head_weights(model)
  assert set(mapping) == set(weights)
  fx.assign_from_manifest(mapping, weights)


def test_param_count_matches_deeplab2():
  weights = fx.manifest_weights("coco_r50")
  in_manifest = sum(v.size for k, v in weights.items() if k.startswith(HEAD_ITEMS))
  semantic_head = sum(v.size for k, v in weights.items() if k.startswith(SEMANTIC_HEAD_ITEMS))
  assert in_manifest == PREDICTION_HEADS_PARAMS - SEMANTIC_DECODER_PARAMS - semantic_head
  head = MaskClassHead(134)
  head(_inputs())
  assert head.count_params() == in_manifest == 175_114


def test_get_config_round_trip():
  head = MaskClassHead(20, head_channels=32, mask_channels=16, activation="relu", name="p")
  x = _inputs(channels=8, slots=5)
  head(x)
  for v in head.weights:
    v.assign(tf.random.stateless_uniform(v.shape, [7, len(v.name)], minval=0.5, maxval=1.5))
  clone = MaskClassHead.from_config(head.get_config())
  clone(x)
  assert [v.shape for v in clone.weights] == [v.shape for v in head.weights]
  clone.set_weights(head.get_weights())
  a, b = head(x), clone(x)
  assert set(a) == set(b) == {outputs.PIXEL_SPACE_MASK_LOGITS, outputs.TRANSFORMER_CLASS_LOGITS,
                              outputs.PIXEL_SPACE_NORMALIZED_FEATURE}
  for k in a:
    np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())


def test_matches_reference_equations():
  """Inference-mode forward against the equations, in float64 numpy."""
  head = MaskClassHead(6, head_channels=8, mask_channels=4, activation="gelu")
  x = _inputs(batch=2, size=5, channels=8, slots=3, seed=4)
  head(x)
  for v in head.weights:
    v.assign(tf.random.stateless_uniform(v.shape, [9, len(v.name)], minval=0.5, maxval=1.5))
  out = head(x, training=False)

  def bn(layer, t):
    return ((t - layer.moving_mean.numpy()) / np.sqrt(layer.moving_variance.numpy() + 1e-3)
            * layer.gamma.numpy() + layer.beta.numpy())

  pixel = head.pixel_space_head(x[outputs.FEATURE_PANOPTIC], training=False).numpy()
  pixel = bn(head.pixel_space_feature_batch_norm, pixel.astype(np.float64))
  pixel /= np.linalg.norm(pixel, axis=-1, keepdims=True)
  np.testing.assert_allclose(out[outputs.PIXEL_SPACE_NORMALIZED_FEATURE], pixel, atol=1e-6)

  mask_head = head.transformer_mask_head
  kernel = x[outputs.TRANSFORMER_MASK_FEATURE].numpy() @ mask_head.conv.kernel.numpy()[0]
  kernel = bn(mask_head.batch_norm, kernel)
  logits = bn(head.pixel_space_mask_batch_norm, np.einsum("bhwd,bnd->bhwn", pixel, kernel))
  np.testing.assert_allclose(out[outputs.PIXEL_SPACE_MASK_LOGITS], logits, rtol=1e-5, atol=1e-5)

  class_head = head.transformer_class_head.conv
  class_logits = (x[outputs.TRANSFORMER_CLASS_FEATURE].numpy() @ class_head.kernel.numpy()[0]
                  + class_head.bias.numpy())
  # The void prior: log((C - 1) * 0.9 / 0.1) on the last (void) class only.
  class_logits[..., -1] += math.log(5 * 9.0)
  np.testing.assert_allclose(out[outputs.TRANSFORMER_CLASS_LOGITS], class_logits,
                             rtol=1e-5, atol=1e-5)


def test_void_prior_at_initialization():
  """With zero class-head weights, the void probability is exactly the prior 0.9."""
  head = MaskClassHead(134)
  x = _inputs()
  head(x)
  for v in head.transformer_class_head.weights:
    v.assign(tf.zeros_like(v))
  probs = tf.nn.softmax(head(x)[outputs.TRANSFORMER_CLASS_LOGITS]).numpy()
  np.testing.assert_allclose(probs[..., -1], 0.9, rtol=1e-6)


def test_passes_auxiliary_outputs_through():
  head = MaskClassHead(6, head_channels=8, mask_channels=4)
  x = _inputs(size=5, channels=8, slots=3)
  x[outputs.AUXILIARY_OUTPUTS] = ({"a": tf.constant([1.0])}, {"a": tf.constant([2.0])})
  passed = head(x)[outputs.AUXILIARY_OUTPUTS]
  assert [float(d["a"][0]) for d in passed] == [1.0, 2.0]
