"""Tests of kmax_tf.training.kmax_evaluator (PQ evaluation as DeepLab2's evaluator does it).

kMaX-DeepLab: Yu et al., ECCV 2022; PQ: Kirillov et al., CVPR 2019.
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.demo import synthetic_panoptic
from kmax_tf.training import kmax_evaluator


def test_resized_size_matches_the_eval_pipeline_rule():
  size = kmax_evaluator.resized_size([100, 50], (129, 129), (129, 129), None).numpy()
  # Both sides reach 129, then the longer is capped at 129.
  np.testing.assert_array_equal(size, [129, 64])
  np.testing.assert_array_equal(kmax_evaluator.resized_size([30, 40], None, None, None), [30, 40])


def test_undo_preprocessing_crops_then_resizes_nearest():
  prediction = np.zeros([9, 9], np.int32)
  prediction[:5, :3] = np.arange(15).reshape(5, 3)
  prediction[5:] = 99  # padding
  out = kmax_evaluator.undo_preprocessing(prediction, [5, 3], [5, 3]).numpy()
  np.testing.assert_array_equal(out, np.arange(15).reshape(5, 3))
  up = kmax_evaluator.undo_preprocessing(prediction, [5, 3], [9, 5]).numpy()
  assert up.shape == (9, 5) and 99 not in up
  np.testing.assert_array_equal(up[0], [0, 1, 1, 2, 2])  # corner-aligned, halves round up


class _Step:
  def __init__(self, value):
    self._value = value

  def numpy(self):
    return self._value


def _evaluator(tmp_path):
  descriptor = synthetic_panoptic.descriptor()
  return kmax_evaluator.KMaXEvaluator(
      model=None, dataset_fn=lambda: [], descriptor=descriptor,
      resize_settings=((65, 65), (65, 65), None),
      global_step=_Step(7), output_dir=str(tmp_path)), descriptor


@pytest.mark.parametrize("perfect", [True, False])
def test_reduce_and_end_compute_pq_and_write_json(tmp_path, perfect):
  evaluator, descriptor = _evaluator(tmp_path)
  evaluator.eval_begin()
  raws, predictions, sizes = [], [], []
  for index, raw_size in enumerate((48, 64)):
    _, segment_map, segments = synthetic_panoptic.draw_scene(3, "val", index, size=raw_size)
    raw = synthetic_panoptic.panoptic_label(segment_map, segments)
    # What a perfect model predicts at the 65x65 eval crop: the label resized
    # like the image (corner-aligned nearest), then padded.
    crop = kmax_evaluator.resized_size([raw_size, raw_size], (65, 65), (65, 65), None).numpy()
    resized = tf.compat.v1.image.resize_nearest_neighbor(
        raw[None, ..., None], crop, align_corners=True)[0, ..., 0].numpy()
    prediction = np.zeros([65, 65], np.int32)
    prediction[:crop[0], :crop[1]] = resized if perfect else 4000
    padded_raw = np.zeros([64, 64], np.int32)
    padded_raw[:raw_size, :raw_size] = raw
    raws.append(padded_raw)
    predictions.append(prediction)
    sizes.append([raw_size, raw_size])
  evaluator.eval_reduce(None, ((tf.constant(predictions),), (tf.constant(raws),),
                               (tf.constant(sizes),)))
  logs = evaluator.eval_end()
  expected = 1.0 if perfect else 0.0
  if perfect:
    assert logs["panoptic_quality/pq"] == pytest.approx(1.0)
  else:
    assert logs["panoptic_quality/pq_things"] == 0.0 and logs["panoptic_quality/pq"] < 0.5
  with open(os.path.join(tmp_path, kmax_evaluator.RESULTS_FILENAME), encoding="utf-8") as f:
    written = json.load(f)
  assert written["step"] == 7 and written["dataset"] == descriptor.name
  assert written["pq"] == pytest.approx(logs["panoptic_quality/pq"])
  assert os.path.exists(os.path.join(tmp_path, "panoptic_quality-7.json"))
  if perfect:
    # Every class present in the labels is recognised perfectly; the others have no
    # segments and are left out of the averages.
    present = {descriptor.class_names[int(c)] for raw in raws
               for c in np.unique(raw) // descriptor.panoptic_label_divisor
               if c != descriptor.ignore_label}
    assert "circle" in present
    for name in present:
      assert written["per_class"][name]["pq"] == pytest.approx(1.0), name
    assert written["All"]["pq"] == pytest.approx(expected)
