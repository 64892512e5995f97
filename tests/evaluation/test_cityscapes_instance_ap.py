"""CityscapesInstanceAP equals cityscapesScripts evalInstanceLevelSemanticLabeling."""
import contextlib
import io
import os

import numpy as np
import pytest
from PIL import Image

from kmax_tf.evaluation.cityscapes_instance_ap import (CITYSCAPES_INSTANCE_LABEL_IDS,
                                                       CITYSCAPES_VOID_LABEL_IDS,
                                                       CityscapesInstanceAP)
from kmax_tf.evaluation.cityscapes_result_writer import CityscapesResultWriter

_NAME = "frankfurt_000000_000294"


def _gt_instance_ids(fixtures_root):
  path = os.path.join(fixtures_root, "cityscapes_frankfurt_sample", "gtFine", "val", "frankfurt",
                      f"{_NAME}_gtFine_instanceIds.png")
  # Twice the fixture's size, so that people pass the 100-pixel minimum region size.
  return np.kron(np.asarray(Image.open(path), np.int64), np.ones((2, 2), np.int64))


def _images(fixtures_root):
  """Two ground truths: the fixture with a car group and a person group painted on the road, and
  its mirror image."""
  base = _gt_instance_ids(fixtures_root)
  first = base.copy()
  road = np.argwhere(first == 7)
  y, x = road[len(road) // 3]
  first[y:y + 12, x:x + 30] = np.where(first[y:y + 12, x:x + 30] == 7, 26, first[y:y + 12, x:x + 30])
  y, x = road[2 * len(road) // 3]
  first[y:y + 10, x:x + 10] = np.where(first[y:y + 10, x:x + 10] == 7, 24, first[y:y + 10, x:x + 10])
  return [("frankfurt_000000_000001", first), ("frankfurt_000000_000002", base[:, ::-1].copy())]


def _predictions(gt, rng):
  masks, labels, scores = [], [], []
  for value in np.unique(gt):
    if value < 1000:
      continue
    mask = np.roll(gt == value, tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
    roll = rng.random()
    if roll < 0.15:
      continue
    label = value // 1000 if roll > 0.3 else (24 if value // 1000 == 26 else 26)
    masks.append(mask)
    labels.append(label)
    scores.append(float(rng.random()))
    if rng.random() < 0.4:  # a duplicate, grown by one pixel
      grown = mask | np.roll(mask, 1, axis=0) | np.roll(mask, 1, axis=1)
      masks.append(grown)
      labels.append(label)
      scores.append(float(rng.random()))
  for region, label in ((gt == 26, 26), (gt == 24, 24), (np.isin(gt, [1, 2, 3, 4]), 24),
                        (gt == 7, 26), (gt == 11, 29), (np.zeros_like(gt, bool), 26)):
    box = np.zeros_like(region)
    ys, xs = np.nonzero(region) if region.any() else (np.array([0]), np.array([0]))
    box[ys.min():ys.min() + 8, xs.min():xs.min() + 12] = True
    masks.append(box & region if region.any() else region)
    labels.append(label)
    scores.append(float(rng.random()))
  return np.stack(masks), labels, scores


def _official(gt_files, txt_files, prediction_root, monkeypatch):
  # cityscapesScripts 2.x calls np.in1d, which numpy 2.4 removed; np.isin is its replacement.
  monkeypatch.setattr(np, "in1d", lambda a, b: np.isin(np.ravel(a), b), raising=False)
  from cityscapesscripts.evaluation import evalInstanceLevelSemanticLabeling as official
  from cityscapesscripts.evaluation.instances2dict import instances2dict
  args = official.args
  args.predictionPath = os.path.abspath(prediction_root)
  args.quiet = True
  official.setInstanceLabels(args)
  with contextlib.redirect_stdout(io.StringIO()):
    gt_instances = instances2dict(gt_files)
    matches = official.matchGtWithPreds(txt_files, gt_files, gt_instances, args)
    aps = official.evaluateMatches(matches, args)
  return official.computeAverages(aps, args), args.instLabels


def test_constants_match_cityscapesscripts():
  from cityscapesscripts.helpers.labels import labels
  assert CITYSCAPES_INSTANCE_LABEL_IDS == tuple(
      l.id for l in labels if l.hasInstances and not l.ignoreInEval)
  assert CITYSCAPES_VOID_LABEL_IDS == tuple(l.id for l in labels if l.ignoreInEval and l.id >= 0)


@pytest.mark.parametrize("seed", [0, 1])
def test_equals_cityscapesscripts_on_files_written_by_our_writer(fixtures_root, tmp_path, seed,
                                                                 monkeypatch):
  rng = np.random.default_rng(seed)
  writer = CityscapesResultWriter(str(tmp_path / "results"))
  metric = CityscapesInstanceAP()
  gt_files, txt_files = [], []
  for name, gt in _images(fixtures_root):
    gt_file = str(tmp_path / f"{name}_gtFine_instanceIds.png")
    Image.fromarray(gt.astype(np.uint16)).save(gt_file)
    masks, labels, scores = _predictions(gt, rng)
    writer.add_instances(name, masks, labels, scores)
    metric.add_image(gt, masks, labels, scores)
    gt_files.append(gt_file)
    txt_files.append(str(tmp_path / "results" / "instance" / f"{name}.txt"))
  expected, names = _official(gt_files, txt_files, str(tmp_path / "results"),
                               monkeypatch)
  ours = metric.result()
  assert ours["AP"] == pytest.approx(expected["allAp"], abs=1e-9)
  assert ours["AP50"] == pytest.approx(expected["allAp50%"], abs=1e-9)
  for label_id, name in zip(CITYSCAPES_INSTANCE_LABEL_IDS, names):
    np.testing.assert_allclose(
        [ours["per_class"][label_id]["AP"], ours["per_class"][label_id]["AP50"]],
        [expected["classes"][name]["ap"], expected["classes"][name]["ap50%"]],
        rtol=0, atol=1e-9, equal_nan=True)
  assert 0.05 < ours["AP"] < 0.95


def test_perfect_and_empty_predictions(fixtures_root):
  _, gt = _images(fixtures_root)[1]
  ids = [v for v in np.unique(gt) if v >= 1000]
  metric = CityscapesInstanceAP()
  metric.add_image(gt, gt[None] == np.array(ids)[:, None, None], [v // 1000 for v in ids],
                   np.linspace(1, 0.1, len(ids)))
  result = metric.result()
  assert result["AP"] == pytest.approx(1.0)
  assert np.isnan(result["per_class"][33]["AP"])  # no bicycle anywhere
  metric.reset_state()
  metric.add_image(gt, np.zeros((0,) + gt.shape, bool), [], [])
  assert metric.result()["AP"] == 0.0
  with pytest.raises(ValueError, match="same length"):
    metric.add_image(gt, np.zeros((1,) + gt.shape, bool), [26], [])
