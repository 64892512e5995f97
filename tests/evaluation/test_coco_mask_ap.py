"""CocoMaskAP equals pycocotools run directly on the same results."""
import contextlib
import io
import json
import os

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from kmax_tf.evaluation import panoptic_png
from kmax_tf.evaluation.coco_mask_ap import CocoMaskAP, encode_masks, instances_from_panoptic

# pycocotools 2.0.x decodes RLEs through a numpy-2-deprecated __array__ path.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _instances_json(fixtures_root):
  return os.path.join(fixtures_root, "coco_val2017_16", "annotations", "instances_val2017.json")


def _predictions(coco, seed=0):
  """Edited ground-truth masks per image: shifted, dropped, relabelled, plus spurious ones."""
  rng = np.random.default_rng(seed)
  category_ids = sorted(coco.getCatIds())
  out = {}
  for image_id in sorted(coco.getImgIds()):
    info = coco.loadImgs(image_id)[0]
    masks, scores, categories = [], [], []
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id)):
      if ann["iscrowd"] or rng.random() < 0.15:
        continue
      mask = np.roll(coco.annToMask(ann), tuple(rng.integers(-4, 5, 2)), axis=(0, 1))
      category = ann["category_id"] if rng.random() > 0.1 else int(rng.choice(category_ids))
      masks.append(mask)
      scores.append(float(rng.random()))
      categories.append(category)
    for _ in range(2):
      mask = np.zeros((info["height"], info["width"]), np.uint8)
      y, x = rng.integers(0, info["height"] // 2), rng.integers(0, info["width"] // 2)
      mask[y:y + 40, x:x + 60] = 1
      masks.append(mask)
      scores.append(float(rng.random()) * 0.5)
      categories.append(int(rng.choice(category_ids)))
    out[image_id] = (np.stack(masks), scores, categories)
  return out


def _direct(groundtruth_dataset, results):
  with contextlib.redirect_stdout(io.StringIO()):
    coco_gt = COCO()
    coco_gt.dataset = groundtruth_dataset
    coco_gt.createIndex()
    evaluator = COCOeval(coco_gt, coco_gt.loadRes(results), iouType="segm")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
  return evaluator.stats


def test_equals_pycocotools_on_coco_instances(fixtures_root):
  path = _instances_json(fixtures_root)
  with contextlib.redirect_stdout(io.StringIO()):
    coco = COCO(path)
  predictions = _predictions(coco)
  metric = CocoMaskAP(groundtruth=path)
  results = []
  for image_id, (masks, scores, categories) in predictions.items():
    metric.add_predictions(image_id, masks, scores, categories)
    for mask, score, category in zip(masks, scores, categories):
      rle = mask_utils.encode(np.asfortranarray(mask))
      results.append({"image_id": image_id, "category_id": category, "segmentation": rle,
                      "score": score})
  with open(path) as f:
    expected = _direct(json.load(f), results)
  ours = metric.result()
  np.testing.assert_allclose(list(ours.values()), expected, rtol=0, atol=1e-12)
  assert 0.2 < ours["AP"] < 0.9
  # The results list is plain JSON.
  json.dumps(metric.coco_results())


def test_accumulated_groundtruth_equals_pycocotools(fixtures_root):
  with contextlib.redirect_stdout(io.StringIO()):
    coco = COCO(_instances_json(fixtures_root))
  predictions = _predictions(coco, seed=3)
  metric = CocoMaskAP()
  dataset = {"images": [], "annotations": [], "categories": [{"id": c} for c in coco.getCatIds()]}
  results = []
  for image_id, (masks, scores, categories) in predictions.items():
    anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
    gt_masks = np.stack([coco.annToMask(a) for a in anns])
    metric.add_groundtruth(image_id, gt_masks, [a["category_id"] for a in anns],
                           [a["iscrowd"] for a in anns])
    metric.add_predictions(image_id, masks, scores, categories)
    dataset["images"].append({"id": image_id, "height": gt_masks.shape[1],
                              "width": gt_masks.shape[2]})
    for a, m in zip(anns, gt_masks):
      rle = mask_utils.encode(np.asfortranarray(m))
      dataset["annotations"].append({"id": len(dataset["annotations"]) + 1, "image_id": image_id,
                                     "category_id": a["category_id"], "segmentation": rle,
                                     "iscrowd": a["iscrowd"], "area": float(m.sum()),
                                     "bbox": mask_utils.toBbox(rle).tolist()})
    for m, s, c in zip(masks, scores, categories):
      results.append({"image_id": image_id, "category_id": c, "score": s,
                      "segmentation": mask_utils.encode(np.asfortranarray(m))})
  # Categories that appear in neither side change nothing in COCOeval's averages.
  used = {a["category_id"] for a in dataset["annotations"]} | {r["category_id"] for r in results}
  dataset["categories"] = [c for c in dataset["categories"] if c["id"] in used]
  expected = _direct(dataset, results)
  np.testing.assert_allclose(list(metric.result().values()), expected, rtol=0, atol=1e-12)


def test_panoptic_instances_perfect_prediction(fixtures_root):
  root = os.path.join(fixtures_root, "pq_reference")
  with open(os.path.join(root, "coco_gt.json")) as f:
    data = json.load(f)
  things = [c["id"] for c in data["categories"] if c["isthing"]]
  metric = CocoMaskAP()
  for ann in data["annotations"]:
    ids = panoptic_png.read_segment_ids(os.path.join(root, "coco_gt", ann["file_name"]))
    panoptic = np.zeros(ids.shape, np.int64)
    for k, s in enumerate(ann["segments_info"]):
      panoptic[ids == s["id"]] = s["category_id"] * 1000 + (0 if s["iscrowd"] else k + 1)
    _, masks, classes, crowd = instances_from_panoptic(panoptic, 1000, things, 0)
    metric.add_groundtruth(ann["image_id"], masks, classes, crowd)
    keep = ~crowd
    metric.add_predictions(ann["image_id"], masks[keep], np.linspace(1, 0.5, keep.sum()),
                           classes[keep])
  result = metric.result()
  assert result["AP"] == pytest.approx(1.0) and result["AP50"] == pytest.approx(1.0)


def test_encode_and_errors():
  assert encode_masks(np.zeros((0, 3, 3))) == []
  with pytest.raises(ValueError, match=r"\[N, H, W\]"):
    encode_masks(np.zeros((3, 3)))
  metric = CocoMaskAP(groundtruth={"images": [], "annotations": [], "categories": []})
  with pytest.raises(ValueError, match="add_groundtruth is not available"):
    metric.add_groundtruth(1, np.zeros((1, 2, 2)), [1])
  with pytest.raises(ValueError, match="same length"):
    metric.add_predictions(1, np.zeros((2, 2, 2)), [0.5], [1])
