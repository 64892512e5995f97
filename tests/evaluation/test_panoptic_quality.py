"""Streaming PanopticQuality: DeepLab2's asserted values, pq_reference, in-graph == file-based."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from PIL import Image

from kmax_tf.evaluation import panoptic
from kmax_tf.evaluation import pq_stats
from kmax_tf.evaluation.panoptic_quality import PanopticQuality

_CLASS_COLORS = {(0, 0, 0): 0, (0, 0, 255): 1, (255, 0, 0): 2, (0, 255, 0): 3, (255, 0, 255): 4,
                 (0, 255, 255): 5, (255, 255, 0): 6}
_GT_CLASS_OF_INSTANCE = {
    "bird": {92: 5, 176: 3, 255: 4},
    "cat": {0: 0, 255: 6},
    "team": {0: 0, 47: 1, 97: 1, 133: 1, 150: 1, 174: 1, 198: 2, 215: 1, 244: 1, 255: 1},
}
_GT_FILE = {"bird": "bird_gt.png", "cat": "cat_gt.png", "team": "team_gt_instance.png"}


def _deeplab2_case(fixtures_root, name, label_divisor):
  """(gt, pred) panoptic maps of one DeepLab2 test image, built as DeepLab2's test builds them."""
  root = os.path.join(fixtures_root, "pq_reference")
  grey = lambda f: np.asarray(Image.open(os.path.join(root, f)).convert("L"), np.int64)
  gt_instance = grey(_GT_FILE[name])
  gt_class = np.zeros_like(gt_instance)
  assert set(np.unique(gt_instance)) == set(_GT_CLASS_OF_INSTANCE[name])
  for instance, cls in _GT_CLASS_OF_INSTANCE[name].items():
    gt_class[gt_instance == instance] = cls
  rgb = np.asarray(Image.open(os.path.join(root, f"{name}_pred_class.png")).convert("RGB"))
  pred_class = np.full(rgb.shape[:2], -1, np.int64)
  for color, cls in _CLASS_COLORS.items():
    pred_class[np.all(rgb == color, axis=-1)] = cls
  assert pred_class.min() >= 0
  pred_instance = grey(f"{name}_pred_instance.png")
  return gt_class * label_divisor + gt_instance, pred_class * label_divisor + pred_instance


def _class_averages(metric):
  """DeepLab2's result vector: PQ, SQ, RQ, TP, FN, FP averaged over classes with tp+fn+fp > 0."""
  tp, fn, fp, iou = (v.numpy() for v in (metric.total_tp, metric.total_fn, metric.total_fp,
                                         metric.total_iou))
  valid = tp + fn + fp > 0
  sq = np.divide(iou, tp, out=np.zeros_like(iou), where=tp > 0)
  rq = tp / np.maximum(tp + 0.5 * fn + 0.5 * fp, 1e-300)
  return [float(np.mean(x[valid])) for x in (sq * rq, sq, rq, tp, fn, fp)]


def test_deeplab2_team_single_image(fixtures_root):
  gt, pred = _deeplab2_case(fixtures_root, "team", 1000)
  metric = PanopticQuality(num_classes=3, label_divisor=1000, ignored_label=0)
  metric.update_state(gt, pred)
  np.testing.assert_allclose(_class_averages(metric),
                             [0.62156284, 0.64664984, 0.9666667, 4.0, 0.5, 0.0], atol=1e-6)
  result = metric.result()
  assert float(result["pq"]) == pytest.approx(0.62156284, abs=1e-6)


def test_deeplab2_three_images_streamed_in_graph(fixtures_root):
  metric = PanopticQuality(num_classes=7, label_divisor=256, ignored_label=0)

  @tf.function
  def update(gt, pred):
    metric.update_state(gt, pred)

  for name in ("bird", "cat", "team"):
    gt, pred = _deeplab2_case(fixtures_root, name, 256)
    update(tf.constant(gt[None]), tf.constant(pred[None]))
  np.testing.assert_allclose(_class_averages(metric),
                             [0.76855499, 0.7769174, 0.98888892, 2.0, 1.0 / 6, 0.0], atol=1e-6)
  # panopticapi on the same three images converted to COCO format (fixture README).
  summary = metric.summary()
  assert summary["All"]["pq"] == pytest.approx(0.7685550312, abs=1e-9)
  assert summary["All"]["sq"] == pytest.approx(0.7769173654, abs=1e-9)
  assert summary["All"]["rq"] == pytest.approx(0.9888888889, abs=1e-9)


def _padded_batches(gts, preds, batch_size, void):
  """Batches of maps padded with void: padding changes no segment, so no number moves."""
  for start in range(0, len(gts), batch_size):
    group = list(zip(gts[start:start + batch_size], preds[start:start + batch_size]))
    h = max(g.shape[0] for g, _ in group)
    w = max(g.shape[1] for g, _ in group)
    gt_batch = np.full((len(group), h, w), void, np.int64)
    pred_batch = np.full((len(group), h, w), void, np.int64)
    for i, (g, p) in enumerate(group):
      gt_batch[i, :g.shape[0], :g.shape[1]] = g
      pred_batch[i, :p.shape[0], :p.shape[1]] = p
    yield gt_batch, pred_batch


def _stream(paths, to_maps, in_graph, batch_size=4):
  gts, preds, things, category_of = to_maps(paths)
  metric = PanopticQuality(num_classes=len(category_of) + 1, label_divisor=1000, ignored_label=0,
                           thing_class_ids=things)
  update = metric.update_state
  if in_graph:
    spec = tf.TensorSpec([None, None, None], tf.int64)

    @tf.function(input_signature=[spec, spec])
    def update(gt, pred):
      metric.update_state(gt, pred)

  for gt, pred in _padded_batches(gts, preds, batch_size, void=0):
    update(gt, pred)
  return metric, category_of


def _by_category(summary, category_of):
  out = {k: summary[k] for k in ("All", "Things", "Stuff")}
  out["per_class"] = {category_of[c]: v for c, v in summary["per_class"].items()}
  return out


def _assert_same(ours, reference, tol=1e-9):
  for split in ("All", "Things", "Stuff"):
    assert ours[split]["n"] == reference[split]["n"]
    for key in ("pq", "sq", "rq"):
      assert ours[split][key] == pytest.approx(reference[split][key], abs=tol), (split, key)
  assert set(ours["per_class"]) == set(reference["per_class"])
  for cid, row in reference["per_class"].items():
    for key in ("pq", "sq", "rq"):
      assert ours["per_class"][cid][key] == pytest.approx(row[key], abs=tol), (cid, key)


def test_pq_reference_in_graph(fixtures_root, to_maps):
  root = os.path.join(fixtures_root, "pq_reference")
  paths = {"gt_json": os.path.join(root, "coco_gt.json"), "gt_folder": os.path.join(root, "coco_gt"),
           "pred_json": os.path.join(root, "coco_pred.json"),
           "pred_folder": os.path.join(root, "coco_pred")}
  metric, category_of = _stream(paths, to_maps, in_graph=True, batch_size=2)
  summary = _by_category(metric.summary(), category_of)
  assert summary["All"]["pq"] == pytest.approx(0.6740486629, abs=1e-9)
  assert summary["All"]["sq"] == pytest.approx(0.6834387674, abs=1e-9)
  assert summary["All"]["rq"] == pytest.approx(0.8205128205, abs=1e-9)
  _assert_same(summary, panoptic.evaluate(**paths, progress=False))
  result = {k: float(v) for k, v in metric.result().items()}
  assert result["pq"] == pytest.approx(0.6740486629, abs=1e-9)
  assert result["pq_things"] == pytest.approx(0.5769675073, abs=1e-9)
  assert result["pq_stuff"] == pytest.approx(0.8682109740, abs=1e-9)


@pytest.mark.parametrize("variant", ("identity", "drop", "merge", "relabel", "shift", "crowd",
                                     "mixed"))
def test_in_graph_streaming_equals_file_based(coco_variants, to_maps, variant):
  paths = coco_variants[variant]
  metric, category_of = _stream(paths, to_maps, in_graph=True)
  sums = panoptic.accumulate(**paths, progress=False)
  classes = [c for c in sorted(category_of)]
  np.testing.assert_array_equal(metric.total_tp.numpy()[classes], sums["tp"])
  np.testing.assert_array_equal(metric.total_fp.numpy()[classes], sums["fp"])
  np.testing.assert_array_equal(metric.total_fn.numpy()[classes], sums["fn"])
  np.testing.assert_allclose(metric.total_iou.numpy()[classes], sums["iou"], rtol=0, atol=1e-9)
  file_based = pq_stats.summarize(sums["category_ids"], sums["is_thing"], sums["iou"], sums["tp"],
                                  sums["fp"], sums["fn"])
  _assert_same(_by_category(metric.summary(), category_of), file_based)


def test_numpy_eager_equals_in_graph_and_reset(coco_variants, to_maps):
  paths = coco_variants["mixed"]
  eager, _ = _stream(paths, to_maps, in_graph=False, batch_size=3)
  graph, _ = _stream(paths, to_maps, in_graph=True, batch_size=5)
  for a, b in zip(eager.variables, graph.variables):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-9)
  eager.reset_state()
  assert all(not np.any(v.numpy()) for v in eager.variables)


def test_void_crowd_and_matching_rules():
  # Classes: 0 void, 1 thing, 2 stuff; divisor 10.
  metric = PanopticQuality(num_classes=3, label_divisor=10, ignored_label=0, thing_class_ids=[1])
  gt = np.array([[11, 11, 11, 11, 0, 0],
                 [11, 11, 11, 11, 0, 0],
                 [10, 10, 10, 20, 20, 20]])
  pred = np.array([[11, 11, 11, 11, 12, 12],   # 12 lies on void only: ignored, no FP
                   [11, 11, 11, 11, 12, 12],
                   [13, 13, 13, 25, 25, 25]])  # 13 lies on the crowd of class 1: no FP
  metric.update_state(gt, pred)
  np.testing.assert_array_equal(metric.total_tp.numpy(), [0, 1, 1])
  np.testing.assert_array_equal(metric.total_fp.numpy(), [0, 0, 0])
  np.testing.assert_array_equal(metric.total_fn.numpy(), [0, 0, 0])
  # The same prediction segment on the crowd of another class is a false positive.
  metric.reset_state()
  metric.update_state(gt, np.where(pred == 13, 23, pred))
  np.testing.assert_array_equal(metric.total_fp.numpy(), [0, 0, 1])


def test_config_round_trip_and_errors():
  metric = PanopticQuality(num_classes=19, label_divisor=1000, ignored_label=255,
                           thing_class_ids=range(11, 19), name="pq")
  config = metric.get_config()
  clone = PanopticQuality.from_config(config)
  assert clone.get_config() == config
  assert [v.shape for v in clone.variables] == [v.shape for v in metric.variables]
  assert tf_keras.metrics.deserialize(tf_keras.metrics.serialize(metric)).get_config() == config
  gt = np.full((2, 4, 4), 255 * 1000, np.int64)
  gt[:, :2] = 11 * 1000 + 1
  clone.update_state(gt, gt)
  assert clone.summary()["Things"]["pq"] == 1.0
  with pytest.raises(ValueError, match="sample_weight"):
    clone.update_state(gt, gt, sample_weight=np.ones(2))
  with pytest.raises(tf.errors.InvalidArgumentError, match="class id outside"):
    clone.update_state(gt, np.full_like(gt, 30 * 1000))
  with pytest.raises(ValueError, match="thing_class_ids"):
    PanopticQuality(num_classes=3, label_divisor=10, ignored_label=0, thing_class_ids=[3])
