"""CocoPanopticWriter: files that panopticapi scores as the maps they came from."""
import contextlib
import io
import json
import os

import numpy as np
import pytest

from kmax_tf.evaluation import panoptic
from kmax_tf.evaluation import panoptic_png
from kmax_tf.evaluation.coco_panoptic_writer import CocoPanopticWriter


def _pq_reference(fixtures_root):
  root = os.path.join(fixtures_root, "pq_reference")
  return {"gt_json": os.path.join(root, "coco_gt.json"), "gt_folder": os.path.join(root, "coco_gt"),
          "pred_json": os.path.join(root, "coco_pred.json"),
          "pred_folder": os.path.join(root, "coco_pred")}


def test_written_predictions_score_like_the_originals(fixtures_root, to_maps, tmp_path):
  from panopticapi.evaluation import pq_compute
  paths = _pq_reference(fixtures_root)
  _, preds, _, category_of = to_maps(paths)
  with open(paths["gt_json"]) as f:
    gt = json.load(f)
  out_json = str(tmp_path / "out" / "predictions.json")
  with CocoPanopticWriter(out_json, gt["categories"], category_of, label_divisor=1000,
                          ignored_label=0) as writer:
    for ann, pred in zip(gt["annotations"], preds):
      writer.add(ann["image_id"], pred, file_name=ann["file_name"])
  with contextlib.redirect_stdout(io.StringIO()):
    official = pq_compute(paths["gt_json"], out_json, paths["gt_folder"], writer.output_folder)
  assert official["All"]["pq"] == pytest.approx(0.6740486629, abs=1e-9)
  ours = panoptic.evaluate(paths["gt_json"], paths["gt_folder"], out_json, writer.output_folder,
                           progress=False)
  assert ours["All"]["pq"] == pytest.approx(0.6740486629, abs=1e-9)
  # Nothing but the final files is left behind.
  assert sorted(os.listdir(tmp_path / "out")) == ["predictions", "predictions.json"]
  assert sorted(os.listdir(writer.output_folder)) == sorted(a["file_name"] for a in gt["annotations"])


def test_segments_round_trip_with_area_and_bbox(tmp_path):
  pred = np.zeros((6, 8), np.int64)          # class 0 is void
  pred[1:3, 2:5] = 1 * 100 + 1              # thing, instance 1
  pred[4:6, 0:8] = 2 * 100 + 0              # stuff
  pred[0, 7] = 1 * 100 + 7                  # thing, instance 7, one pixel
  categories = [{"id": 5, "name": "a", "isthing": 1}, {"id": 9, "name": "b", "isthing": 0}]
  writer = CocoPanopticWriter(str(tmp_path / "p.json"), categories, {1: 5, 2: 9},
                              label_divisor=100, ignored_label=0)
  annotation = writer.add(42, pred)
  writer.close()
  with open(tmp_path / "p.json") as f:
    written = json.load(f)
  assert written["annotations"] == [annotation] and written["categories"] == categories
  ids = panoptic_png.read_segment_ids(str(tmp_path / "p" / "42.png"))
  by_id = {s["id"]: s for s in annotation["segments_info"]}
  assert set(np.unique(ids)) == {0} | set(by_id)
  for s in by_id.values():
    ys, xs = np.nonzero(ids == s["id"])
    assert s["area"] == len(ys)
    assert s["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    original = np.unique(pred[ids == s["id"]])
    assert len(original) == 1 and {1: 5, 2: 9}[original[0] // 100] == s["category_id"]
  np.testing.assert_array_equal(ids == 0, pred == 0)


def test_errors(tmp_path):
  categories = [{"id": 5, "name": "a", "isthing": 1}]
  with pytest.raises(ValueError, match=r"category ids \[6\]"):
    CocoPanopticWriter(str(tmp_path / "p.json"), categories, [5, 6], 10, 0)
  writer = CocoPanopticWriter(str(tmp_path / "p.json"), categories, {1: 5}, 10, 0)
  with pytest.raises(ValueError, match="class 3 has no category id"):
    writer.add(1, np.array([[31, 11]]))
  writer.add(1, np.array([[0, 11]]))
  with pytest.raises(ValueError, match="already written"):
    writer.add(1, np.array([[0, 11]]))
