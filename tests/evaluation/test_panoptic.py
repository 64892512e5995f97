"""File-based panoptic quality: known values, agreement with panopticapi / cityscapesScripts, CLI,
input checks."""
import contextlib
import io
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from kmax_tf.evaluation import panoptic
from kmax_tf.evaluation import panoptic_png
from kmax_tf.evaluation import pq_stats
from kmax_tf.evaluation.panoptic_input_error import PanopticInputError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

VARIANTS = ("identity", "drop", "merge", "relabel", "shift", "crowd", "mixed")


def assert_results_close(ours, theirs, tol):
  for split in ("All", "Things", "Stuff"):
    assert ours[split]["n"] == theirs[split]["n"], split
    for key in ("pq", "sq", "rq"):
      assert abs(ours[split][key] - theirs[split][key]) <= tol, (split, key)
  assert set(ours["per_class"]) == {int(k) for k in theirs["per_class"]}
  for cid, row in theirs["per_class"].items():
    for key in ("pq", "sq", "rq"):
      assert abs(ours["per_class"][int(cid)][key] - row[key]) <= tol, (cid, key)


def _pq_reference(fixtures_root):
  root = os.path.join(fixtures_root, "pq_reference")
  return {"gt_json": os.path.join(root, "coco_gt.json"), "gt_folder": os.path.join(root, "coco_gt"),
          "pred_json": os.path.join(root, "coco_pred.json"),
          "pred_folder": os.path.join(root, "coco_pred")}


def _quiet(fn, *args, **kwargs):
  with contextlib.redirect_stdout(io.StringIO()) as out:
    result = fn(*args, **kwargs)
  return result, out.getvalue()


def test_pq_reference_values(fixtures_root):
  results = panoptic.evaluate(**_pq_reference(fixtures_root), progress=False)
  expected = {"All": (0.6740486629, 0.6834387674, 0.8205128205, 6),
              "Things": (0.5769675073, None, None, 4), "Stuff": (0.8682109740, None, None, 2)}
  for split, (pq, sq, rq, n) in expected.items():
    assert results[split]["n"] == n
    assert results[split]["pq"] == pytest.approx(pq, abs=1e-9)
    if sq is not None:
      assert results[split]["sq"] == pytest.approx(sq, abs=1e-9)
      assert results[split]["rq"] == pytest.approx(rq, abs=1e-9)
  per_class_pq = {1: 0.6760875234, 2: 0.0, 3: 0.7453531599, 4: 0.8576779026, 5: 0.9910687881,
                  6: 0.7741046032}
  for cid, pq in per_class_pq.items():
    assert results["per_class"][cid]["pq"] == pytest.approx(pq, abs=1e-9)


def test_pq_reference_equals_panopticapi_and_workers_agree(fixtures_root):
  from panopticapi.evaluation import pq_compute
  paths = _pq_reference(fixtures_root)
  theirs, _ = _quiet(pq_compute, paths["gt_json"], paths["pred_json"], paths["gt_folder"],
                     paths["pred_folder"])
  one = panoptic.evaluate(**paths, num_workers=1, progress=False)
  two = panoptic.evaluate(**paths, num_workers=2, progress=False)
  assert_results_close(one, theirs, 1e-9)
  assert one == two


@pytest.mark.parametrize("variant", VARIANTS)
def test_equals_panopticapi_on_edited_coco(coco_variants, variant):
  from panopticapi.evaluation import pq_compute
  paths = coco_variants[variant]
  theirs, _ = _quiet(pq_compute, paths["gt_json"], paths["pred_json"], paths["gt_folder"],
                     paths["pred_folder"])
  ours = panoptic.evaluate(**paths, progress=False)
  assert_results_close(ours, theirs, 1e-9)
  if variant != "identity":
    assert ours["All"]["pq"] < 1.0


@pytest.mark.parametrize("variant", VARIANTS)
def test_equals_cityscapesscripts_on_edited_cityscapes(cityscapes_variants, variant, tmp_path):
  from cityscapesscripts.evaluation.evalPanopticSemanticLabeling import evaluatePanoptic
  paths = cityscapes_variants[variant]
  theirs, _ = _quiet(evaluatePanoptic, paths["gt_json"], paths["gt_folder"], paths["pred_json"],
                     paths["pred_folder"], str(tmp_path / "cityscapes_results.json"))
  ours = panoptic.evaluate(**paths, progress=False)
  assert_results_close(ours, theirs, 1e-9)


def test_cli_table_and_json_match_panopticapi(fixtures_root, tmp_path, capsys):
  from panopticapi.evaluation import pq_compute
  paths = _pq_reference(fixtures_root)
  out_json = tmp_path / "results" / "pq.json"
  status = panoptic.main([f"--{k}={v}" for k, v in paths.items()] +
                         [f"--output_json={out_json}", "--noprogress"])
  assert status == 0
  printed = capsys.readouterr().out.splitlines()
  _, official = _quiet(pq_compute, paths["gt_json"], paths["pred_json"], paths["gt_folder"],
                       paths["pred_folder"])
  official = official.splitlines()
  header = official.index(next(l for l in official if l.strip().startswith("|")))
  assert printed[:5] == official[header:header + 5]
  with open(out_json) as f:
    written = json.load(f)
  assert set(written) == {"All", "Things", "Stuff", "per_class"}
  assert set(written["All"]) == {"pq", "sq", "rq", "n"}
  assert set(written["per_class"]) == {"1", "2", "3", "4", "5", "6"}
  assert written["All"]["pq"] == pytest.approx(0.6740486629, abs=1e-9)


def test_cli_cityscapes_table_matches_cityscapesscripts(cityscapes_variants, tmp_path, capsys):
  from cityscapesscripts.evaluation.evalPanopticSemanticLabeling import evaluatePanoptic
  paths = cityscapes_variants["mixed"]
  assert panoptic.main([f"--{k}={v}" for k, v in paths.items()] +
                       ["--format=cityscapes", "--noprogress"]) == 0
  printed = capsys.readouterr().out.splitlines()
  _, official = _quiet(evaluatePanoptic, paths["gt_json"], paths["gt_folder"],
                       paths["pred_json"], paths["pred_folder"], str(tmp_path / "r.json"))
  official = official.splitlines()
  start = official.index(next(l for l in official if l.startswith("Category")))
  assert printed[:24] == official[start:start + 24]


def test_format_table_rejects_unknown_style():
  results = pq_stats.summarize([1], [True], [0.9], [1], [0], [0])
  with pytest.raises(ValueError, match="Unknown table style"):
    pq_stats.format_table(results, style="ade20k")


# ---- input checks -------------------------------------------------------------------------


@pytest.fixture
def editable(fixtures_root, tmp_path):
  """A writable copy of pq_reference: returns (paths, gt dict, pred dict, save())."""
  src = _pq_reference(fixtures_root)
  paths = {}
  for key in ("gt", "pred"):
    paths[f"{key}_folder"] = str(tmp_path / key)
    shutil.copytree(src[f"{key}_folder"], paths[f"{key}_folder"])
    paths[f"{key}_json"] = str(tmp_path / f"{key}.json")
    shutil.copy(src[f"{key}_json"], paths[f"{key}_json"])
  data = {k: json.load(open(paths[f"{k}_json"])) for k in ("gt", "pred")}

  def save():
    for k in ("gt", "pred"):
      with open(paths[f"{k}_json"], "w") as f:
        json.dump(data[k], f)
  return paths, data, save


def _run(paths):
  return panoptic.evaluate(**paths, num_workers=1, progress=False)


def test_error_missing_png_names_the_image(editable):
  paths, _, _ = editable
  os.remove(os.path.join(paths["pred_folder"], "cat.png"))
  with pytest.raises(PanopticInputError, match=r"Missing PNG: image 2: the prediction PNG .*cat\.png"):
    _run(paths)


def test_error_png_segment_absent_from_json(editable):
  paths, data, save = editable
  dropped = data["pred"]["annotations"][0]["segments_info"].pop(0)
  save()
  with pytest.raises(PanopticInputError,
                     match=rf"Segment ids absent from the JSON: image 1: the prediction PNG .*"
                           rf"bird\.png contains segment ids \[{dropped['id']}\]"):
    _run(paths)


def test_error_ground_truth_png_segment_absent_from_json(editable):
  paths, data, save = editable
  dropped = data["gt"]["annotations"][1]["segments_info"].pop(0)
  save()
  with pytest.raises(PanopticInputError,
                     match=rf"image 2: the ground-truth PNG .*contains segment ids \[{dropped['id']}\]"):
    _run(paths)


def test_error_json_segment_absent_from_png(editable):
  paths, data, save = editable
  data["pred"]["annotations"][1]["segments_info"].append({"id": 77, "category_id": 6})
  save()
  with pytest.raises(PanopticInputError, match=r"image 2: prediction segments \[77\] are listed "
                                               r"in the prediction JSON but absent"):
    _run(paths)


def test_error_unknown_category(editable):
  paths, data, save = editable
  data["pred"]["annotations"][0]["segments_info"][1]["category_id"] = 99
  save()
  with pytest.raises(PanopticInputError, match=r"Unknown category id: image 1: prediction segment "
                                               r"\d+ has category_id 99"):
    _run(paths)


def test_error_duplicate_segment_id(editable):
  paths, data, save = editable
  segments = data["pred"]["annotations"][2]["segments_info"]
  segments.append(dict(segments[3]))
  save()
  with pytest.raises(PanopticInputError, match=r"Duplicate segment id: image 3: the prediction "
                                               rf"segments_info lists segment id {segments[3]['id']}"):
    _run(paths)


def test_error_duplicate_image_id(editable):
  paths, data, save = editable
  data["pred"]["annotations"].append(dict(data["pred"]["annotations"][0], file_name="x.png"))
  save()
  with pytest.raises(PanopticInputError, match=r"Duplicate image id: .* two annotations for image 1"):
    _run(paths)


def test_error_overlapping_annotations_share_a_png(editable):
  paths, data, save = editable
  data["gt"]["annotations"][1]["file_name"] = "bird.png"
  save()
  with pytest.raises(PanopticInputError, match=r"Overlapping annotations: .* images 1 and 2 both "
                                               r"use the PNG 'bird.png'"):
    _run(paths)


def test_error_missing_prediction_and_size_mismatch(editable):
  paths, data, save = editable
  data["pred"]["annotations"].pop()
  save()
  with pytest.raises(PanopticInputError, match=r"No prediction for image 4"):
    _run(paths)
  data["pred"]["annotations"] = json.load(open(_pq_reference_json(paths)))["annotations"]
  save()
  cat = os.path.join(paths["pred_folder"], "cat.png")
  panoptic_png.write_segment_ids(cat, panoptic_png.read_segment_ids(cat)[:-1])
  with pytest.raises(PanopticInputError, match=r"image 2: the ground-truth PNG is \d+x\d+ but the "
                                               r"prediction PNG is"):
    _run(paths)


def _pq_reference_json(paths):
  from kmax_tf.testing import deeplab2_fixtures
  return os.path.join(deeplab2_fixtures.fixtures_dir(), "pq_reference", "coco_pred.json")


def test_error_from_worker_process_and_cli_exit_status(editable, capsys):
  paths, _, _ = editable
  bird = os.path.join(paths["pred_folder"], "bird.png")
  Image.fromarray(np.full((4, 4, 3), 9, np.uint8)).save(bird)
  with pytest.raises(PanopticInputError, match=r"image 1: the ground-truth PNG is"):
    panoptic.evaluate(**paths, num_workers=2, progress=False)
  os.remove(bird)
  status = panoptic.main([f"--{k}={v}" for k, v in paths.items()] + ["--noprogress"])
  assert status == 1
  assert "error: Missing PNG: image 1" in capsys.readouterr().err


def test_progress_bar_and_module_entry_point(fixtures_root, tmp_path, capsys):
  import subprocess
  import sys
  paths = _pq_reference(fixtures_root)
  panoptic.evaluate(**paths, num_workers=1, progress=True)
  assert "panoptic quality" in capsys.readouterr().err
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  out_json = tmp_path / "r.json"
  done = subprocess.run(
      [sys.executable, "-m", "kmax_tf.evaluation.panoptic"] +
      [f"--{k}={v}" for k, v in paths.items()] + [f"--output_json={out_json}"],
      cwd=repo, capture_output=True, text=True, check=False,
      env=dict(os.environ, PYTHONPATH=repo))
  assert done.returncode == 0, done.stderr
  assert "All       |  67.4   68.3   82.1     6" in done.stdout
  assert json.loads(out_json.read_text())["All"]["n"] == 6


@pytest.mark.parametrize("dense_cells", [panoptic._DENSE_CELLS, 0])
def test_many_segments_equal_panopticapi_dense_and_sparse(tmp_path, monkeypatch, dense_cells):
  # 320 x 320 segments; dense_cells=0 forces the sparse count of the intersection matrix.
  from panopticapi.evaluation import pq_compute
  monkeypatch.setattr(panoptic, "_DENSE_CELLS", dense_cells)
  rng = np.random.default_rng(5)
  gt_ids = (np.arange(64)[:, None] // 4 * 20 + np.arange(80)[None, :] // 4 + 1).astype(np.int64)
  pred_ids = np.roll(gt_ids, (0, 1), axis=(0, 1))
  pred_ids[:3, :5] = 0
  categories = [{"id": 1, "name": "a", "isthing": 1}, {"id": 2, "name": "b", "isthing": 0}]
  data = {}
  for side, ids in (("gt", gt_ids), ("pred", pred_ids)):
    panoptic_png.write_segment_ids(str(tmp_path / side / "x.png"), ids)
    present, counts = np.unique(ids[ids > 0], return_counts=True)
    data[side] = {"categories": categories, "annotations": [{
        "image_id": 1, "file_name": "x.png", "segments_info": [
            {"id": int(i), "category_id": int(rng.integers(1, 3)), "iscrowd": int(i % 37 == 0),
             "area": int(c)} for i, c in zip(present, counts)]}]}
    with open(tmp_path / f"{side}.json", "w") as f:
      json.dump(data[side], f)
  assert len(data["gt"]["annotations"][0]["segments_info"]) == 320
  paths = {"gt_json": str(tmp_path / "gt.json"), "gt_folder": str(tmp_path / "gt"),
           "pred_json": str(tmp_path / "pred.json"), "pred_folder": str(tmp_path / "pred")}
  theirs, _ = _quiet(pq_compute, paths["gt_json"], paths["pred_json"], paths["gt_folder"],
                     paths["pred_folder"])
  ours = _run(paths)
  assert_results_close(ours, theirs, 1e-9)
  assert 0 < ours["All"]["rq"] < 1


def test_pillow_fallback_gives_the_same_numbers(fixtures_root, monkeypatch):
  paths = _pq_reference(fixtures_root)
  fast = _run(paths)
  monkeypatch.setattr(panoptic_png, "pyspng", None)
  assert _run(paths) == fast
