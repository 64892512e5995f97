"""Tests of kmax_tf.training.kmax_evaluator (PQ evaluation as DeepLab2's evaluator does it).

kMaX-DeepLab: Yu et al., ECCV 2022; PQ: Kirillov et al., CVPR 2019.
"""
import contextlib
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.demo import synthetic_panoptic
from kmax_tf.evaluation import coco_panoptic_writer
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
  scores = tf.fill([len(predictions), 65, 65], 0.9)
  names = tf.constant([f"image_{i}" for i in range(len(predictions))])
  evaluator.eval_reduce(None, (((tf.constant(predictions), scores),), (tf.constant(raws),),
                               (tf.constant(sizes),), (names,)))
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


def _scenes(seed, count, size, corrupt):
  """(raw labels, 65x65 crop predictions, names): perfect predictions, optionally corrupted."""
  raws, predictions = [], []
  rng = np.random.RandomState(seed)
  for index in range(count):
    _, segment_map, segments = synthetic_panoptic.draw_scene(seed, "val", index, size=size)
    raw = synthetic_panoptic.panoptic_label(segment_map, segments)
    crop = kmax_evaluator.resized_size([size, size], (65, 65), (65, 65), None).numpy()
    resized = tf.compat.v1.image.resize_nearest_neighbor(
        raw[None, ..., None], crop, align_corners=True)[0, ..., 0].numpy()
    prediction = np.zeros([65, 65], np.int32)
    prediction[:crop[0], :crop[1]] = resized
    if corrupt:
      # A rectangle of another stuff class, and one thing instance given another class.
      y, x = rng.randint(0, 40, 2)
      prediction[y:y + 20, x:x + 25] = 5000
      things = [i for i in np.unique(prediction) if 1 <= i // 1000 <= 3 and i % 1000]
      if things:
        victim = things[rng.randint(len(things))]
        prediction[prediction == victim] = (victim // 1000 % 3 + 1) * 1000 + 77
    raws.append(raw)
    predictions.append(prediction)
  return raws, predictions


def test_predictions_are_written_in_coco_format_and_scored_like_panopticapi(tmp_path):
  from panopticapi.evaluation import pq_compute  # pylint: disable=g-import-not-at-top
  descriptor = synthetic_panoptic.descriptor()
  evaluator = kmax_evaluator.KMaXEvaluator(
      model=None, dataset_fn=lambda: [], descriptor=descriptor,
      resize_settings=((65, 65), (65, 65), None), global_step=_Step(7),
      output_dir=str(tmp_path / "eval"), prediction_dir=str(tmp_path / "predictions"))
  evaluator.eval_begin()
  raws, predictions = _scenes(11, 6, 64, corrupt=True)
  names = [f"scene_{i}" for i in range(len(raws))]
  scores = tf.constant(np.random.RandomState(0).uniform(0.5, 1.0, [len(raws), 65, 65]),
                       tf.float32)
  evaluator.eval_reduce(None, (((tf.constant(predictions), scores),), (tf.constant(raws),),
                               (tf.constant([[64, 64]] * len(raws)),), (tf.constant(names),)))
  logs = evaluator.eval_end()

  gt_json = str(tmp_path / "gt.json")
  with coco_panoptic_writer.for_descriptor(descriptor, gt_json) as gt_writer:
    for name, raw in zip(names, raws):
      gt_writer.add(name, raw, file_name=f"{name}.png")
  written = tmp_path / "predictions" / "7"
  assert sorted(os.listdir(written / "panoptic")) == sorted(f"{n}.png" for n in names)
  with contextlib.redirect_stdout(io.StringIO()):
    official = pq_compute(gt_json, str(written / "panoptic.json"), gt_writer.output_folder,
                          str(written / "panoptic"))
  assert 0.2 < official["All"]["pq"] < 0.95
  for split, suffix in (("All", ""), ("Things", "_things"), ("Stuff", "_stuff")):
    assert logs[f"panoptic_quality/pq{suffix}"] == pytest.approx(official[split]["pq"], abs=1e-6)

  # mIoU from a confusion matrix of the same class maps.
  gt_classes = np.stack(raws) // 1000
  pred_classes = np.stack([kmax_evaluator.undo_preprocessing(p, [65, 65], [64, 64]).numpy()
                           for p in predictions]) // 1000
  ious = []
  for c in range(1, descriptor.num_classes):
    union = np.sum((gt_classes == c) | ((pred_classes == c) & (gt_classes != 0)))
    if union:
      ious.append(np.sum((gt_classes == c) & (pred_classes == c)) / union)
  assert logs["mean_iou/miou"] == pytest.approx(np.mean(ious), abs=1e-6)
  assert 0.0 < logs["mask_ap/AP"] < 1.0
  for name in ("mean_iou.json", "mean_iou-7.json", "mask_ap.json", "mask_ap-7.json"):
    with open(tmp_path / "eval" / name, encoding="utf-8") as f:
      assert json.load(f)["step"] == 7


def test_perfect_predictions_give_full_miou_and_mask_ap(tmp_path):
  evaluator, _ = _evaluator(tmp_path)
  evaluator.eval_begin()
  raws, predictions = _scenes(12, 4, 64, corrupt=False)
  evaluator.eval_reduce(None, (((tf.constant(predictions), tf.fill([4, 65, 65], 0.9)),),
                               (tf.constant(raws),), (tf.constant([[64, 64]] * 4),),
                               (tf.constant(["a", "b", "c", "d"]),)))
  logs = evaluator.eval_end()
  assert logs["panoptic_quality/pq"] == pytest.approx(1.0)
  assert logs["mean_iou/miou"] == pytest.approx(1.0)
  assert logs["mask_ap/AP"] == pytest.approx(1.0)
