"""Panoptic copy-paste: which segments move, and how their ids change."""
import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.data.panoptic_copy_paste import panoptic_copy_paste

_DIVISOR = 256
_PADDING = 1  # ignore label 0 * divisor + 1
_THINGS = (1, 2)
_STUFF = (5, 6)


def _pair():
  canvas_label = np.full((6, 8, 1), 5 * 256, np.int32)
  canvas_label[1:3, 1:3] = 1 * 256 + 1
  paste_label = np.full((6, 8, 1), 6 * 256, np.int32)  # stuff
  paste_label[0:2, 4:7] = 2 * 256 + 1  # thing
  paste_label[3:5, 0:2] = 2 * 256 + 2  # thing
  paste_label[4:6, 5:8] = 0  # void
  paste_label[:, 7:] = _PADDING  # padded by the paste sample's crop
  canvas = tf.zeros([6, 8, 3])
  paste = tf.fill([6, 8, 3], 200.0)
  return canvas, tf.constant(canvas_label), paste, tf.constant(paste_label)


def _paste(seed, **options):
  canvas, canvas_label, paste, paste_label = _pair()
  image, label = panoptic_copy_paste(
      canvas, canvas_label, paste, paste_label, tf.constant([seed, 0],
                                                            tf.int64),
      _DIVISOR, 0, _THINGS, _STUFF, _PADDING, **options)
  return image.numpy(), label.numpy()[..., 0], paste_label.numpy()[..., 0]


def test_pasted_pixels_carry_the_pasted_segments():
  subsets = set()
  for seed in range(16):
    image, label, paste_label = _paste(seed)
    pasted = image[..., 0] == 200.0
    assert np.all(image[~pasted] == 0.0)
    # Whole segments move; instance ids k become divisor - 1 - k.
    for value in np.unique(paste_label):
      where = paste_label == value
      assert np.all(pasted[where]) or not np.any(pasted[where])
    expected = np.where(paste_label % 256 == 0, paste_label,
                        paste_label // 256 * 256 + 255 - paste_label % 256)
    np.testing.assert_array_equal(label[pasted], expected[pasted])
    assert not np.any(pasted[paste_label == _PADDING])
    assert not np.any(pasted[paste_label == 0])  # void_option "none"
    subsets.add(tuple(sorted(np.unique(paste_label[pasted]))))
  assert len(subsets) > 3


def test_options_force_or_forbid_segment_kinds():
  for seed in range(6):
    image, label, paste_label = _paste(seed, thing_option="all",
                                       stuff_option="none",
                                       void_option="all")
    pasted = image[..., 0] == 200.0
    things = paste_label // 256 == 2
    assert np.all(pasted[things]) and np.all(pasted[paste_label == 0])
    assert not np.any(pasted[paste_label == 6 * 256])
    assert set(np.unique(label[things])) == {2 * 256 + 254, 2 * 256 + 253}


def test_same_seed_same_result_and_bad_option():
  first, again = _paste(4), _paste(4)
  np.testing.assert_array_equal(first[1], again[1])
  with pytest.raises(ValueError, match="copy-paste option"):
    _paste(0, thing_option="some")


def test_instance_ids_must_leave_room():
  canvas, canvas_label, paste, paste_label = _pair()
  with pytest.raises(tf.errors.InvalidArgumentError, match="label_divisor"):
    panoptic_copy_paste(canvas, canvas_label + 200, paste, paste_label,
                        tf.constant([0, 0], tf.int64), _DIVISOR, 0, _THINGS,
                        _STUFF, _PADDING)
