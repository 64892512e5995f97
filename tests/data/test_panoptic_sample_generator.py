"""PanopticSampleGenerator: DeepLab2's target maps, training invariants."""
import os

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from kmax_tf.config import parse_config
from kmax_tf.data import datasets
from kmax_tf.data import target_keys
from kmax_tf.data.panoptic_sample_generator import PanopticSampleGenerator
from kmax_tf.testing import deeplab2_fixtures


def _testdata(*parts):
  return os.path.join(deeplab2_fixtures.fixtures_dir(), "deeplab2_testdata",
                      *parts)


def _png(*parts):
  return np.array(Image.open(_testdata(*parts)))


def test_targets_equal_deeplab2_sample_generator_test_data():
  """DeepLab2's golden targets for its dummy Cityscapes crop (769x769).

  Its test crops and flips randomly; panoptic_target.npy is the label crop it
  drew, from which all other target maps follow deterministically.
  """
  label = np.load(_testdata("targets", "panoptic_target.npy"))
  generator = PanopticSampleGenerator(
      datasets.get_dataset_descriptor("cityscapes_panoptic"),
      is_training=True, crop_size=(769, 769), thing_id_mask_annotations=True,
      small_instance_threshold=4096, small_instance_weight=3.0,
      center_targets=True)
  targets = {k: v.numpy() for k, v in generator.targets(
      tf.constant(label, tf.int32)).items()}
  np.testing.assert_array_equal(
      targets[target_keys.THING_ID_MASK_GT],
      np.load(_testdata("targets", "thing_id_mask_target.npy")))
  np.testing.assert_array_equal(
      targets[target_keys.THING_ID_CLASS_GT],
      np.load(_testdata("targets", "thing_id_class_target.npy")))
  np.testing.assert_array_equal(targets[target_keys.IS_CROWD_GT],
                                np.load(_testdata("targets", "is_crowd.npy")))
  np.testing.assert_array_equal(targets[target_keys.SEMANTIC_GT],
                                _png("targets", "semantic_target.png"))
  for key, name, scale in (
      (target_keys.SEMANTIC_LOSS_WEIGHT, "semantic_weights.png", 85),
      (target_keys.INSTANCE_CENTER_GT, "center_target.png", 255),
      (target_keys.CENTER_LOSS_WEIGHT, "center_weights.png", 255),
      (target_keys.REGRESSION_LOSS_WEIGHT, "offset_weights.png", 255)):
    np.testing.assert_array_equal(
        (targets[key] * scale).astype(np.uint8), _png("targets", name),
        err_msg=name)


def test_eval_raw_labels_equal_deeplab2_test_data():
  rgb = _png("dummy_gt_for_vps.png").astype(np.int32)
  label = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
  generator = PanopticSampleGenerator(
      datasets.get_dataset_descriptor("cityscapes_panoptic"),
      is_training=False, crop_size=(800, 800),
      thing_id_mask_annotations=False)
  sample = generator({
      "image": tf.constant(_png("leftImg8bit",
                                "dummy_000000_000000_leftImg8bit.png")),
      "image_name": tf.constant("dummy"), "height": tf.constant(800),
      "width": tf.constant(800),
      "label": tf.constant(label[..., np.newaxis])})
  np.testing.assert_array_equal(
      sample[target_keys.PANOPTIC_RAW],
      np.squeeze(np.load(_testdata("targets", "eval_panoptic_target.npy"))))
  np.testing.assert_array_equal(
      sample[target_keys.IS_CROWD_RAW],
      np.load(_testdata("targets", "eval_is_crowd.npy")))
  np.testing.assert_array_equal(sample[target_keys.SEMANTIC_RAW],
                                _png("targets", "eval_semantic_target.png"))


# A synthetic sample whose colours encode its label, so geometry can be
# checked after augmentation: every panoptic id has its own colour.
_COCO = datasets.get_dataset_descriptor("coco_panoptic")
_IDS = {0: (7, 7, 7), 92 * 256: (200, 30, 30), 1 * 256 + 1: (30, 200, 30),
        1 * 256 + 2: (30, 30, 200), 3 * 256 + 1: (220, 220, 20)}


def _synthetic_sample(height=48, width=64):
  label = np.full((height, width), 92 * 256, np.int32)  # stuff background
  label[5:20, 4:30] = 1 * 256 + 1
  label[25:45, 10:22] = 1 * 256 + 2
  label[8:40, 40:60] = 3 * 256 + 1
  label[0:3, :] = 0
  image = np.zeros((height, width, 3), np.uint8)
  for panoptic_id, color in _IDS.items():
    image[label == panoptic_id] = color
  return {"image": tf.constant(image), "image_name": tf.constant("synthetic"),
          "height": tf.constant(height), "width": tf.constant(width),
          "label": tf.constant(label[..., np.newaxis])}


def _check_colors_match_labels(image, label, interior_only=False):
  """Pixels show their label's colour; padding is 127.5 / void."""
  padding = np.all(image == 127.5, axis=-1)
  assert np.all(label[padding] == 0)
  if interior_only:  # bilinear colours are exact away from label boundaries
    same = np.ones_like(label, bool)
    for dy in (-1, 0, 1):
      for dx in (-1, 0, 1):
        same &= np.roll(label, (dy, dx), (0, 1)) == label
    same[[0, -1], :] = same[:, [0, -1]] = False
  else:
    same = np.ones_like(label, bool)
  for panoptic_id, color in _IDS.items():
    where = (label == panoptic_id) & same & ~padding
    np.testing.assert_allclose(image[where],
                               np.broadcast_to(color, image[where].shape),
                               atol=1e-3)


def _generator(**kwargs):
  kwargs.setdefault("crop_size", (41, 57))
  return PanopticSampleGenerator(_COCO, is_training=True, **kwargs)


def test_crop_and_flip_keep_labels_on_their_pixels():
  generator = _generator(crop_size=(41, 80))  # wider than the image: padding
  flips = set()
  for seed in range(6):
    out = generator(_synthetic_sample(), tf.constant([seed, 0], tf.int64))
    image = out[target_keys.IMAGE].numpy()
    label = out[target_keys.PANOPTIC_GT].numpy()
    assert image.shape == (41, 80, 3) and label.shape == (41, 80)
    assert np.sum(np.all(image == 127.5, -1)) >= 41 * 16  # 80 - 64 columns
    _check_colors_match_labels(image, label)
    # Flip: the two thing columns' order tells the orientation.
    columns = np.where(label == 3 * 256 + 1)[1]
    others = np.where(label == 1 * 256 + 1)[1]
    if columns.size and others.size:
      flips.add(bool(columns.mean() < others.mean()))
  assert flips == {False, True}


def test_random_scale_and_autoaugment_keep_geometry():
  generator = _generator(min_scale_factor=0.5, max_scale_factor=2.0,
                         scale_factor_step_size=0.5)
  shapes = set()
  for seed in range(4):
    out = generator(_synthetic_sample(), tf.constant([seed, 1], tf.int64))
    image = out[target_keys.IMAGE].numpy()
    label = out[target_keys.PANOPTIC_GT].numpy()
    _check_colors_match_labels(image, label, interior_only=True)
    shapes.add(int(np.sum(label == 1 * 256 + 1)))
  assert len(shapes) > 1  # different scales
  augmented = _generator(autoaugment_policy_name="simple_classification_policy")
  for seed in range(4):
    out = augmented(_synthetic_sample(), tf.constant([seed, 2], tf.int64))
    plain = _generator()(_synthetic_sample(), tf.constant([seed, 2],
                                                          tf.int64))
    # Colour-only policy: identical labels for the same seed.
    np.testing.assert_array_equal(out[target_keys.PANOPTIC_GT],
                                  plain[target_keys.PANOPTIC_GT])


def test_same_seed_same_sample():
  generator = _generator(min_scale_factor=0.5, max_scale_factor=1.5,
                         scale_factor_step_size=0.25,
                         autoaugment_policy_name="simple_classification_policy")
  first = generator(_synthetic_sample(), tf.constant([5, 9], tf.int64))
  again = generator(_synthetic_sample(), tf.constant([5, 9], tf.int64))
  other = generator(_synthetic_sample(), tf.constant([6, 9], tf.int64))
  for key in first:
    np.testing.assert_array_equal(first[key], again[key])
  assert any(not np.array_equal(first[k], other[k]) for k in first)


def test_thing_ids_follow_the_panoptic_label():
  out = _generator()(_synthetic_sample(), tf.constant([1, 1], tf.int64))
  panoptic = out[target_keys.PANOPTIC_GT].numpy()
  mask = out[target_keys.THING_ID_MASK_GT].numpy()
  classes = out[target_keys.THING_ID_CLASS_GT].numpy()
  flat = panoptic.reshape(-1)
  order = [v for v in dict.fromkeys(flat) if v % 256 and v // 256 != 0]
  for thing_id, panoptic_id in enumerate(order):
    np.testing.assert_array_equal(mask == thing_id, panoptic == panoptic_id)
    assert classes[thing_id] == panoptic_id // 256
  assert np.all(classes[len(order):] == -1)
  assert np.all(mask[panoptic % 256 == 0] == -1)


def test_from_dataset_options():
  options = parse_config("""train_dataset_options {
      dataset: "coco_panoptic" crop_size: 65 crop_size: 65
      min_resize_value: 65 max_resize_value: 65
      augmentations { min_scale_factor: 0.5 max_scale_factor: 1.5
        scale_factor_step_size: 0.1
        autoaugment_policy_name: "simple_classification_policy"
        panoptic_copy_paste { panoptic_copy_paste_scale: 0.5
          panoptic_copy_paste_thing_option: "all" } }
      increase_small_instance_weights: true small_instance_threshold: 100
      small_instance_weight: 2.0 thing_id_mask_annotations: true }
      """).train_dataset_options
  generator = PanopticSampleGenerator.from_dataset_options(options, _COCO,
                                                           True)
  assert generator.crop_size == (65, 65)
  assert generator.uses_copy_paste and generator.copy_paste_scale == 0.5
  assert generator.copy_paste_thing_option == "all"
  assert generator.small_instance_threshold == 100
  out = generator(_synthetic_sample(), tf.constant([0, 0], tf.int64),
                  paste_sample=_synthetic_sample())
  assert out[target_keys.IMAGE].shape == (65, 65, 3)
  with pytest.raises(ValueError, match="exceeds crop_size"):
    PanopticSampleGenerator(_COCO, False, (33, 33), max_resize_value=65)


def test_copy_paste_from_options_pastes_every_thing_with_its_pixels():
  """thing_option "all" at scale 1: each thing of the paste sample arrives whole.

  Pasted instance k of a class becomes instance divisor - 1 - k (DeepLab2's rule, so
  pasted ids cannot collide with the canvas's), with the paste sample's pixels.
  """
  options = parse_config("""train_dataset_options {
      dataset: "coco_panoptic" crop_size: 65 crop_size: 65
      augmentations { min_scale_factor: 1.0 max_scale_factor: 1.0
        panoptic_copy_paste { panoptic_copy_paste_scale: 1.0
          panoptic_copy_paste_thing_option: "all" } } }
      """).train_dataset_options
  generator = PanopticSampleGenerator.from_dataset_options(options, _COCO, True)
  canvas = _synthetic_sample()
  canvas["label"] = tf.fill([48, 64, 1], 92 * 256)
  canvas["image"] = tf.fill([48, 64, 3], tf.constant(200, tf.uint8))
  paste = _synthetic_sample()
  paste_label = paste["label"].numpy()[..., 0]
  for seed in range(4):
    out = generator(canvas, tf.constant([seed, 0], tf.int64), paste_sample=paste)
    label = out[target_keys.PANOPTIC_GT].numpy()
    image = out[target_keys.IMAGE].numpy()
    for thing in (1 * 256 + 1, 1 * 256 + 2, 3 * 256 + 1):
      pasted = label == thing // 256 * 256 + 255 - thing % 256
      assert pasted.sum() == (paste_label == thing).sum(), (seed, thing)
      np.testing.assert_array_equal(image[pasted], np.broadcast_to(_IDS[thing],
                                                                   image[pasted].shape))
    assert not np.isin(label, [1 * 256 + 1, 1 * 256 + 2, 3 * 256 + 1]).any()
