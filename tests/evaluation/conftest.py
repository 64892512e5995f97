"""Shared data for the evaluation tests: predictions made by editing real ground truth.

Each variant edits the COCO (or Cityscapes) panoptic ground truth of ../shared/fixtures the way a
model goes wrong (drop a segment, merge two, relabel one, shift by a few pixels, mark a ground
truth segment crowd, all at once) and writes ground truth + prediction in COCO panoptic format,
so the same files can be scored by our evaluators and by the official tools.
"""
import copy
import json
import os

import numpy as np
import pytest

from kmax_tf.evaluation import panoptic_png
from kmax_tf.testing import deeplab2_fixtures

COCO_VARIANTS = ("identity", "drop", "merge", "relabel", "shift", "crowd", "mixed")
# Large enough for any image of the fixtures (COCO has at most a few dozen segments per class).
LABEL_DIVISOR = 1000


@pytest.fixture(scope="session")
def fixtures_root():
  return deeplab2_fixtures.fixtures_dir()


def _read_dataset(json_path, folder):
  with open(json_path) as f:
    data = json.load(f)
  images = []
  for ann in data["annotations"]:
    ids = panoptic_png.read_segment_ids(os.path.join(folder, ann["file_name"]))
    images.append((ann, ids))
  return data, images


def _areas(ids, segments):
  """Segments still present in `ids`, with their areas."""
  counts = dict(zip(*np.unique(ids, return_counts=True)))
  return [dict(s, area=int(counts[s["id"]])) for s in segments if counts.get(s["id"], 0)]


def _shift(ids, dy, dx):
  out = np.zeros_like(ids)
  h, w = ids.shape
  out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = (
      ids[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)])
  return out


def _edit(variant, ann, ids, categories, rng):
  """Returns (gt segments, pred segments, pred ids) for one image."""
  gt_segments = copy.deepcopy(ann["segments_info"])
  pred = ids.copy()
  segments = [dict(s, iscrowd=0) for s in gt_segments]
  by_area = lambda: sorted(segments, key=lambda s: -s["area"])
  cat_ids = sorted(categories)

  def drop():
    victim = by_area()[len(segments) // 2]
    pred[pred == victim["id"]] = 0
    segments.remove(victim)

  def merge():
    by_cat = {}
    for s in by_area():
      by_cat.setdefault(s["category_id"], []).append(s)
    pair = next((v[:2] for v in by_cat.values() if len(v) >= 2), by_area()[:2])
    if len(pair) == 2:
      pred[pred == pair[1]["id"]] = pair[0]["id"]
      segments.remove(pair[1])

  def relabel():
    victim = by_area()[min(2, len(segments) - 1)]
    same_kind = [c for c in cat_ids if categories[c]["isthing"] == categories[
        victim["category_id"]]["isthing"] and c != victim["category_id"]]
    victim["category_id"] = same_kind[int(rng.integers(len(same_kind)))]

  def shift():
    pred[:] = _shift(pred, 3, -2)

  def crowd():
    crowded = {s["category_id"] for s in gt_segments if s["iscrowd"]}
    things = [s for s in gt_segments
              if categories[s["category_id"]]["isthing"] and not s["iscrowd"]
              and s["category_id"] not in crowded]
    if things:
      max(things, key=lambda s: s["area"])["iscrowd"] = 1

  def spurious():
    h, w = pred.shape
    new_id = int(pred.max()) + 1
    y, x = int(rng.integers(h // 2)), int(rng.integers(w // 2))
    pred[y:y + h // 4, x:x + w // 5] = new_id
    segments.append({"id": new_id, "category_id": int(rng.choice(cat_ids)), "iscrowd": 0})

  edits = {"identity": [], "drop": [drop], "merge": [merge], "relabel": [relabel],
           "shift": [shift], "crowd": [crowd, shift],
           "mixed": [crowd, drop, merge, relabel, shift, spurious]}[variant]
  for edit in edits:
    edit()
  return gt_segments, _areas(pred, segments), pred


def write_variant(out_dir, data, images, variant, seed=0):
  """Writes gt.json + gt/ and pred.json + pred/ of one variant; returns their paths."""
  rng = np.random.default_rng(seed)
  categories = {c["id"]: c for c in data["categories"]}
  paths = {k: os.path.join(out_dir, k) for k in ("gt", "pred")}
  gt_anns, pred_anns = [], []
  for ann, ids in images:
    gt_segments, pred_segments, pred = _edit(variant, ann, ids, categories, rng)
    name = os.path.splitext(ann["file_name"])[0] + ".png"
    panoptic_png.write_segment_ids(os.path.join(paths["gt"], name), ids)
    panoptic_png.write_segment_ids(os.path.join(paths["pred"], name), pred)
    gt_anns.append(dict(ann, file_name=name, segments_info=gt_segments))
    pred_anns.append({"image_id": ann["image_id"], "file_name": name,
                      "segments_info": pred_segments})
  gt_data = {k: v for k, v in data.items() if k != "annotations"}
  gt_data["annotations"] = gt_anns
  for side, content in (("gt", gt_data), ("pred", {"annotations": pred_anns,
                                                    "categories": data["categories"]})):
    with open(paths[side] + ".json", "w") as f:
      json.dump(content, f)
  return {"gt_json": paths["gt"] + ".json", "gt_folder": paths["gt"],
          "pred_json": paths["pred"] + ".json", "pred_folder": paths["pred"]}


@pytest.fixture(scope="session")
def coco_variants(fixtures_root, tmp_path_factory):
  root = os.path.join(fixtures_root, "coco_val2017_16", "annotations")
  data, images = _read_dataset(os.path.join(root, "panoptic_val2017.json"),
                               os.path.join(root, "panoptic_val2017"))
  out = {}
  for variant in COCO_VARIANTS:
    out[variant] = write_variant(str(tmp_path_factory.mktemp(f"coco_{variant}")), data, images,
                                 variant)
  return out


@pytest.fixture(scope="session")
def cityscapes_variants(fixtures_root, tmp_path_factory):
  root = os.path.join(fixtures_root, "cityscapes_frankfurt_sample", "derived_by_cityscapesscripts")
  data, images = _read_dataset(os.path.join(root, "cityscapes_panoptic_val.json"),
                               os.path.join(root, "cityscapes_panoptic_val"))
  out = {}
  for variant in COCO_VARIANTS:
    out[variant] = write_variant(str(tmp_path_factory.mktemp(f"cityscapes_{variant}")), data,
                                 images, variant)
  return out


def coco_files_to_maps(paths, label_divisor=LABEL_DIVISOR):
  """Panoptic maps (class * label_divisor + instance) of a variant's files.

  Classes are 1 + the category's position (0 = void, the ignored label); ground-truth crowd
  segments of thing classes get instance 0, every other segment its own instance id >= 1.
  Returns (gt maps, pred maps, thing class ids, {class: category id}).
  """
  with open(paths["gt_json"]) as f:
    gt_data = json.load(f)
  with open(paths["pred_json"]) as f:
    pred_data = json.load(f)
  class_of = {c["id"]: k + 1 for k, c in enumerate(gt_data["categories"])}
  things = [class_of[c["id"]] for c in gt_data["categories"] if c["isthing"]]
  pred_by_image = {a["image_id"]: a for a in pred_data["annotations"]}

  def to_map(ids, segments, crowd_aware):
    label_of = {}
    next_instance = {}
    for s in segments:
      cls = class_of[s["category_id"]]
      if crowd_aware and s.get("iscrowd", 0) == 1:
        instance = 0
      else:
        instance = next_instance.get(cls, 1)
        next_instance[cls] = instance + 1
      assert instance < label_divisor
      label_of[s["id"]] = cls * label_divisor + instance
    listed = np.array(sorted(label_of) or [0], np.int64)
    labels = np.array([label_of.get(int(i), 0) for i in listed], np.int64)
    position = np.minimum(np.searchsorted(listed, ids), len(listed) - 1)
    # Ids absent from segments_info are void (only id 0 in valid files).
    return np.where(listed[position] == ids, labels[position], 0)

  gts, preds = [], []
  for ann in gt_data["annotations"]:
    pred_ann = pred_by_image[ann["image_id"]]
    gt_ids = panoptic_png.read_segment_ids(os.path.join(paths["gt_folder"], ann["file_name"]))
    pred_ids = panoptic_png.read_segment_ids(
        os.path.join(paths["pred_folder"], pred_ann["file_name"]))
    gts.append(to_map(gt_ids, ann["segments_info"], True))
    preds.append(to_map(pred_ids, pred_ann["segments_info"], False))
  return gts, preds, things, {v: k for k, v in class_of.items()}


@pytest.fixture(scope="session")
def to_maps():
  return coco_files_to_maps
