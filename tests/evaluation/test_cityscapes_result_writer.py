"""CityscapesResultWriter: semantic, panoptic and instance files the official scripts accept."""
import contextlib
import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from kmax_tf.evaluation import panoptic
from kmax_tf.evaluation import panoptic_png
from kmax_tf.evaluation.cityscapes_result_writer import (CITYSCAPES_CATEGORIES,
                                                         CITYSCAPES_TRAIN_ID_TO_LABEL_ID,
                                                         CityscapesResultWriter)

_NAME = "frankfurt_000000_000294"


def _train_id_panoptic(fixtures_root):
  root = os.path.join(fixtures_root, "cityscapes_frankfurt_sample", "derived_by_cityscapesscripts")
  with open(os.path.join(root, "cityscapes_panoptic_val_trainId.json")) as f:
    data = json.load(f)
  ann = data["annotations"][0]
  ids = panoptic_png.read_segment_ids(os.path.join(root, "cityscapes_panoptic_val_trainId",
                                                   ann["file_name"]))
  out = np.full(ids.shape, 255 * 1000, np.int64)
  for s in ann["segments_info"]:
    out[ids == s["id"]] = s["category_id"] * 1000 + (s["id"] % 1000 if s["id"] >= 1000 else 0)
  return out


def test_categories_match_cityscapesscripts():
  from cityscapesscripts.helpers.labels import labels
  evaluated = [l for l in labels if 0 <= l.trainId < 255]
  assert CITYSCAPES_TRAIN_ID_TO_LABEL_ID == tuple(l.id for l in sorted(evaluated,
                                                                       key=lambda l: l.trainId))
  assert [(c["id"], c["name"], c["isthing"]) for c in CITYSCAPES_CATEGORIES] == [
      (l.id, l.name, int(l.hasInstances)) for l in sorted(evaluated, key=lambda l: l.trainId)]


def test_ground_truth_written_as_results_scores_perfectly(fixtures_root, tmp_path):
  from cityscapesscripts.evaluation.evalPanopticSemanticLabeling import evaluatePanoptic
  pan = _train_id_panoptic(fixtures_root)
  things = [int(i) for i in np.unique(pan) if 11 <= i // 1000 <= 18]
  scores = {i: 1.0 - 0.01 * k for k, i in enumerate(things)}
  out = tmp_path / "results"
  with CityscapesResultWriter(str(out)) as writer:
    writer.add(_NAME, pan, instance_scores=scores)

  root = os.path.join(fixtures_root, "cityscapes_frankfurt_sample")
  label_ids = np.asarray(Image.open(os.path.join(
      root, "gtFine", "val", "frankfurt", f"{_NAME}_gtFine_labelIds.png")))
  semantic = np.asarray(Image.open(out / "semantic" / f"{_NAME}.png"))
  void = pan // 1000 == 255
  np.testing.assert_array_equal(semantic[~void], label_ids[~void])
  assert not semantic[void].any()

  gt_json = os.path.join(root, "derived_by_cityscapesscripts", "cityscapes_panoptic_val.json")
  gt_folder = os.path.join(root, "derived_by_cityscapesscripts", "cityscapes_panoptic_val")
  with contextlib.redirect_stdout(io.StringIO()):
    official = evaluatePanoptic(gt_json, gt_folder, str(out / "panoptic.json"),
                                str(out / "panoptic"), str(tmp_path / "r.json"))
  ours = panoptic.evaluate(gt_json, gt_folder, str(out / "panoptic.json"), str(out / "panoptic"),
                           progress=False)
  assert official["All"]["pq"] == pytest.approx(1.0) and ours["All"]["pq"] == pytest.approx(1.0)

  lines = (out / "instance" / f"{_NAME}.txt").read_text().splitlines()
  assert len(lines) == len(things)
  for line, inst in zip(lines, things):
    name, label_id, score = line.split(" ")
    assert int(label_id) == CITYSCAPES_TRAIN_ID_TO_LABEL_ID[inst // 1000]
    assert float(score) == scores[inst]
    mask = np.asarray(Image.open(out / "instance" / name)) != 0
    np.testing.assert_array_equal(mask, pan == inst)
  leftovers = [f for _, _, files in os.walk(out) for f in files if f.startswith(".tmp")]
  assert not leftovers


def test_errors(tmp_path):
  writer = CityscapesResultWriter(str(tmp_path))
  with pytest.raises(ValueError, match="no score for thing segments"):
    writer.add("a", np.array([[11001, 0]]), instance_scores={})
  with pytest.raises(ValueError, match="train ids must lie"):
    writer.add("b", np.array([[300000]]))
  with pytest.raises(ValueError, match="same length"):
    writer.add_instances("c", np.zeros((1, 2, 2)), [24], [])
