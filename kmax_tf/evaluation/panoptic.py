"""File-based panoptic quality (PQ / SQ / RQ; Kirillov et al., CVPR 2019), equal to the official tools.

Scores COCO-panoptic-format predictions (a JSON plus one PNG per image) against ground truth in
the same format, exactly as panopticapi `pq_compute` (COCO) and cityscapesScripts
`evaluatePanoptic` (Cityscapes; the same algorithm) do:
  - void pixels (id 0) belong to no segment; a ground-truth/prediction pair of one category
    matches when IoU > 0.5, where the union leaves out the prediction's pixels on void;
  - ground-truth crowd segments are never matched, and an unmatched prediction is no false
    positive when more than half of it lies on void plus the crowd region of its category
    (when one category has several crowd segments in an image, the last one listed counts, as
    in panopticapi);
  - ground-truth areas come from the JSON `area` field (the official tools read them there).

It is faster than the official scripts because each image costs two PNG decodes (libspng when
installed) plus a few linear passes that cut the two maps into runs of constant (gt id,
prediction id); the gt x prediction intersection matrix is then one weighted `bincount` over the
runs (about 3% of the pixels on COCO) instead of sorting 64-bit keys of every pixel.
Images are spread over worker processes; a progress bar shows their completion.

Usage:
  kmax-evaluate --gt_json=GT.json --gt_folder=GT_PNGS \
      --pred_json=PRED.json --pred_folder=PRED_PNGS [--format=coco|cityscapes] \
      [--output_json=RESULTS.json] [--num_workers=N] [--noprogress]

Malformed inputs raise PanopticInputError (exit status 1 on the command line) naming the image.
"""
import json
import math
import multiprocessing
import os
import sys
import time
from typing import Mapping, Optional, Sequence

from absl import flags
import numpy as np

from kmax_tf import cli
from kmax_tf.evaluation import panoptic_png
from kmax_tf.evaluation import pq_stats
from kmax_tf.evaluation.panoptic_input_error import PanopticInputError

_MAX_SEGMENT_ID = 1 << 24
# Up to this many gt x prediction cells the intersection matrix is counted densely.
_DENSE_CELLS = 1 << 20

# Per-process state of the workers (set by _init_worker).
_STATE = {}


def _load_json(path: str, side: str) -> dict:
  if not os.path.isfile(path):
    raise PanopticInputError(f"The {side} JSON {path} does not exist.")
  with open(path) as f:
    return json.load(f)


def _category_table(categories: Sequence[Mapping]) -> dict:
  table = {}
  for category in categories:
    cid = category["id"]
    if cid in table:
      raise PanopticInputError(f"The ground-truth categories list category id {cid} twice.")
    table[cid] = category
  return table


def _index_annotations(annotations: Sequence[Mapping], side: str, json_path: str,
                       categories: Mapping) -> dict:
  """Checks one side's annotations; returns {image_id: annotation} in file order."""
  by_image = {}
  by_file = {}
  for ann in annotations:
    for key in ("image_id", "file_name", "segments_info"):
      if key not in ann:
        raise PanopticInputError(f"An annotation in the {side} JSON {json_path} has no {key!r}.")
    image_id, file_name = ann["image_id"], ann["file_name"]
    if image_id in by_image:
      raise PanopticInputError(
          f"Duplicate image id: the {side} JSON {json_path} has two annotations for image "
          f"{image_id!r}.")
    if file_name in by_file:
      raise PanopticInputError(
          f"Overlapping annotations: in the {side} JSON {json_path}, images "
          f"{by_file[file_name]!r} and {image_id!r} both use the PNG {file_name!r}.")
    by_image[image_id] = ann
    by_file[file_name] = image_id
    seen = set()
    for segment in ann["segments_info"]:
      sid = segment["id"]
      if sid in seen:
        raise PanopticInputError(
            f"Duplicate segment id: image {image_id!r}: the {side} segments_info lists segment "
            f"id {sid} more than once.")
      seen.add(sid)
      if not 0 <= sid < _MAX_SEGMENT_ID:
        raise PanopticInputError(f"image {image_id!r}: {side} segment id {sid} is outside [0, 2^24).")
      if segment["category_id"] not in categories:
        raise PanopticInputError(
            f"Unknown category id: image {image_id!r}: {side} segment {sid} has category_id "
            f"{segment['category_id']}, which is not among the ground-truth categories.")
  return by_image


def _init_worker(gt_folder: str, pred_folder: str, category_index: Mapping) -> None:
  _STATE.clear()
  _STATE.update(gt_folder=gt_folder, pred_folder=pred_folder, category_index=category_index)


def _runs(gt_ids: np.ndarray, pred_ids: np.ndarray):
  """Maximal runs of pixels (in raster order) with one gt code and one prediction code.

  Panoptic maps are piecewise constant, so there are few runs (about 3% of the pixels on COCO);
  everything after this works on runs instead of pixels. Codes carry the id in their low 24 bits
  (panoptic_png.read_id_codes); the ids are taken out of the run starts only.
  Returns (gt id, prediction id, length) per run.
  """
  gt = gt_ids.ravel()
  pred = pred_ids.ravel()
  if not gt.size:
    return gt, pred, np.zeros(0, np.int64)
  change = gt[1:] != gt[:-1]
  change |= pred[1:] != pred[:-1]
  starts = np.flatnonzero(change)
  starts += 1
  starts = np.concatenate([[0], starts])
  lengths = np.diff(starts, append=gt.size)
  return gt[starts] & 0xFFFFFF, pred[starts] & 0xFFFFFF, lengths


def _segment_positions(values: np.ndarray, segment_ids: Sequence[int], image_id, side: str,
                       path: str) -> np.ndarray:
  """1 + position in `segment_ids` of each value, 0 for void; rejects ids not listed.

  Id 0 is void unless the JSON lists it: then, as in panopticapi, it is a segment like any other.
  """
  listed = np.asarray(segment_ids, np.int64)
  if len(listed):
    order = np.argsort(listed, kind="stable")
    ordered = listed[order]
    at = np.minimum(np.searchsorted(ordered, values), len(listed) - 1)
    found = ordered[at] == values
    positions = np.where(found, order[at] + 1, 0)
  else:
    found = np.zeros(values.shape, bool)
    positions = np.zeros(values.shape, np.int64)
  unknown = ~found & (values != 0)
  if unknown.any():
    raise PanopticInputError(
        f"Segment ids absent from the JSON: image {image_id!r}: the {side} PNG {path} contains "
        f"segment ids {np.unique(values[unknown]).tolist()} that are not listed in the {side} "
        "JSON segments_info.")
  return positions


def _image_sums(gt_ann: Mapping, pred_ann: Mapping):
  """Per-category (iou, tp, fp, fn) of one image; follows panopticapi's pq_compute_single_core."""
  category_index = _STATE["category_index"]
  n_categories = len(category_index)
  image_id = gt_ann["image_id"]
  gt_path = os.path.join(_STATE["gt_folder"], gt_ann["file_name"])
  pred_path = os.path.join(_STATE["pred_folder"], pred_ann["file_name"])
  gt_ids = _read(gt_path, image_id, "ground-truth")
  pred_ids = _read(pred_path, image_id, "prediction")
  if gt_ids.shape != pred_ids.shape:
    raise PanopticInputError(
        f"image {image_id!r}: the ground-truth PNG is {gt_ids.shape[0]}x{gt_ids.shape[1]} but "
        f"the prediction PNG is {pred_ids.shape[0]}x{pred_ids.shape[1]}.")
  gt_segments = gt_ann["segments_info"]
  pred_segments = pred_ann["segments_info"]
  n_gt, n_pred = len(gt_segments) + 1, len(pred_segments) + 1
  run_gt, run_pred, run_length = _runs(gt_ids, pred_ids)
  cells = _segment_positions(run_gt, [s["id"] for s in gt_segments], image_id, "ground-truth",
                             gt_path) * n_pred
  cells += _segment_positions(run_pred, [s["id"] for s in pred_segments], image_id, "prediction",
                              pred_path)
  # Non-empty (gt, prediction) cells with their pixel counts; row / column 0 is void.
  if n_gt * n_pred <= _DENSE_CELLS:
    dense = np.bincount(cells, weights=run_length, minlength=n_gt * n_pred)
    cell_ids = np.flatnonzero(dense)
    pixels = dense[cell_ids].astype(np.int64)
  else:
    cell_ids, inverse = np.unique(cells, return_inverse=True)
    pixels = np.bincount(inverse, weights=run_length).astype(np.int64)
  row, col = np.divmod(cell_ids, n_pred)

  pred_area = np.bincount(col, weights=pixels, minlength=n_pred)[1:].astype(np.int64)
  if np.any(pred_area == 0):
    absent = [s["id"] for s, a in zip(pred_segments, pred_area) if a == 0]
    raise PanopticInputError(
        f"image {image_id!r}: prediction segments {absent} are listed in the prediction JSON "
        f"but absent from the prediction PNG {pred_path}.")
  gt_pixels = np.bincount(row, weights=pixels, minlength=n_gt)[1:].astype(np.int64)
  gt_area = np.array([s.get("area", c) for s, c in zip(gt_segments, gt_pixels)], np.int64)
  gt_cat = np.array([category_index[s["category_id"]] for s in gt_segments], np.intp)
  gt_crowd = np.array([s.get("iscrowd", 0) == 1 for s in gt_segments], bool)
  pred_cat = np.array([category_index[s["category_id"]] for s in pred_segments], np.intp)
  # panopticapi's void is ground-truth id 0, even when the JSON also lists 0 as a segment.
  gt_segment_ids = [s["id"] for s in gt_segments]
  void_row = gt_segment_ids.index(0) + 1 if 0 in gt_segment_ids else 0
  on_void_cell = (row == void_row) & (col > 0)
  on_void = np.bincount(col[on_void_cell] - 1, weights=pixels[on_void_cell],
                        minlength=n_pred - 1).astype(np.int64)
  both = (row > 0) & (col > 0)
  all_gi, all_pj, all_overlap = row[both] - 1, col[both] - 1, pixels[both]

  candidate = (gt_cat[all_gi] == pred_cat[all_pj]) & ~gt_crowd[all_gi]
  gi, pj, overlap = all_gi[candidate], all_pj[candidate], all_overlap[candidate]
  iou = overlap / (pred_area[pj] + gt_area[gi] - overlap - on_void[pj])
  match = iou > 0.5
  gi, pj, iou = gi[match], pj[match], iou[match]
  iou_sum = np.bincount(gt_cat[gi], weights=iou, minlength=n_categories)
  tp = np.bincount(gt_cat[gi], minlength=n_categories)
  gt_matched = np.zeros(len(gt_segments), bool)
  gt_matched[gi] = True
  pred_matched = np.zeros(len(pred_segments), bool)
  pred_matched[pj] = True

  fn = np.bincount(gt_cat[~gt_matched & ~gt_crowd], minlength=n_categories)
  # panopticapi keeps one crowd segment per category: the last one in segments_info.
  crowd_of_category = np.full(n_categories, -1, np.intp)
  for i in np.flatnonzero(gt_crowd):
    crowd_of_category[gt_cat[i]] = i
  on_own_crowd = crowd_of_category[pred_cat[all_pj]] == all_gi
  ignored = on_void + np.bincount(all_pj[on_own_crowd], weights=all_overlap[on_own_crowd],
                                  minlength=n_pred - 1).astype(np.int64)
  false_positive = ~pred_matched & ~(ignored / pred_area > 0.5)
  fp = np.bincount(pred_cat[false_positive], minlength=n_categories)
  return iou_sum, tp, fp, fn


def _read(path: str, image_id, side: str) -> np.ndarray:
  try:
    return panoptic_png.read_id_codes(path)
  except (OSError, ValueError):
    raise PanopticInputError(
        f"Missing PNG: image {image_id!r}: the {side} PNG {path} is missing or unreadable."
    ) from None


def _chunk_sums(chunk):
  n_categories = len(_STATE["category_index"])
  iou = np.zeros(n_categories, np.float64)
  counts = np.zeros((3, n_categories), np.int64)
  for gt_ann, pred_ann in chunk:
    image_iou, tp, fp, fn = _image_sums(gt_ann, pred_ann)
    iou += image_iou
    counts += np.stack([tp, fp, fn])
  return len(chunk), iou, counts


def accumulate(gt_json: str, gt_folder: str, pred_json: str, pred_folder: str,
               num_workers: Optional[int] = None, progress: bool = True) -> dict:
  """Checks the inputs and returns the per-category sums.

  Args:
    gt_json: COCO panoptic ground-truth JSON (annotations and categories).
    gt_folder: folder of the ground-truth PNGs.
    pred_json: COCO panoptic results JSON, one annotation per ground-truth image.
    pred_folder: folder of the predicted PNGs.
    num_workers: worker processes; None uses every CPU.
    progress: show a progress bar.

  Returns:
    {"category_ids": [...], "is_thing": [...], "names": [...], "iou": float64 array,
     "tp", "fp", "fn": int64 arrays}, aligned with the ground-truth categories.
  """
  gt = _load_json(gt_json, "ground-truth")
  pred = _load_json(pred_json, "prediction")
  for data, side, path in ((gt, "ground-truth", gt_json), (pred, "prediction", pred_json)):
    if "annotations" not in data:
      raise PanopticInputError(f"The {side} JSON {path} has no 'annotations'.")
  if "categories" not in gt:
    raise PanopticInputError(f"The ground-truth JSON {gt_json} has no 'categories'.")
  for folder, side in ((gt_folder, "ground-truth"), (pred_folder, "prediction")):
    if not os.path.isdir(folder):
      raise PanopticInputError(f"The {side} PNG folder {folder} does not exist.")
  categories = _category_table(gt["categories"])
  gt_by_image = _index_annotations(gt["annotations"], "ground-truth", gt_json, categories)
  pred_by_image = _index_annotations(pred["annotations"], "prediction", pred_json, categories)
  tasks = []
  for image_id, gt_ann in gt_by_image.items():
    pred_ann = pred_by_image.get(image_id)
    if pred_ann is None:
      raise PanopticInputError(f"No prediction for image {image_id!r} in {pred_json}.")
    for folder, ann, side in ((gt_folder, gt_ann, "ground-truth"),
                              (pred_folder, pred_ann, "prediction")):
      path = os.path.join(folder, ann["file_name"])
      if not os.path.isfile(path):
        raise PanopticInputError(f"Missing PNG: image {image_id!r}: the {side} PNG {path} "
                                 "does not exist.")
    tasks.append((gt_ann, pred_ann))

  category_index = {cid: k for k, cid in enumerate(categories)}
  n_categories = len(category_index)
  iou = np.zeros(n_categories, np.float64)
  counts = np.zeros((3, n_categories), np.int64)
  num_workers = max(1, min(num_workers or os.cpu_count() or 1, len(tasks) or 1))
  # Several chunks per worker balance the load; small chunks keep the progress bar moving.
  chunk_size = max(1, min(8, math.ceil(len(tasks) / (4 * num_workers))))
  chunks = [tasks[i:i + chunk_size] for i in range(0, len(tasks), chunk_size)]
  with _progress_bar(len(tasks), progress) as bar:
    if num_workers == 1:
      _init_worker(gt_folder, pred_folder, category_index)
      results = map(_chunk_sums, chunks)
      pool = None
    else:
      pool = _start_method_context().Pool(num_workers, initializer=_init_worker,
                          initargs=(gt_folder, pred_folder, category_index))
      results = pool.imap(_chunk_sums, chunks)
    try:
      for n, chunk_iou, chunk_counts in results:
        iou += chunk_iou
        counts += chunk_counts
        bar.update(n)
    finally:
      if pool is not None:
        pool.terminate()
        pool.join()
      else:
        _STATE.clear()
  return {"category_ids": list(categories),
          "is_thing": [categories[c].get("isthing", 0) == 1 for c in categories],
          "names": [categories[c].get("name", str(c)) for c in categories],
          "iou": iou, "tp": counts[0], "fp": counts[1], "fn": counts[2]}


def _start_method_context():
  """fork (fastest start) unless TensorFlow is loaded: its thread pools may hold locks that a
  forked child would inherit, so then forkserver."""
  methods = multiprocessing.get_all_start_methods()
  if "fork" in methods and "tensorflow" not in sys.modules:
    return multiprocessing.get_context("fork")
  if "forkserver" in methods:
    return multiprocessing.get_context("forkserver")
  return multiprocessing.get_context()


def evaluate(gt_json: str, gt_folder: str, pred_json: str, pred_folder: str,
             num_workers: Optional[int] = None, progress: bool = True) -> dict:
  """Returns panopticapi's result dict: All / Things / Stuff {pq, sq, rq, n} and per_class.

  Arguments as in `accumulate`.
  """
  sums = accumulate(gt_json, gt_folder, pred_json, pred_folder, num_workers, progress)
  return pq_stats.summarize(sums["category_ids"], sums["is_thing"], sums["iou"], sums["tp"],
                            sums["fp"], sums["fn"])


class _NoBar:

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    return False

  def update(self, n):
    del n


def _progress_bar(total: int, enabled: bool):
  if not enabled:
    return _NoBar()
  from tqdm import tqdm
  return tqdm(total=total, unit="img", desc="panoptic quality", file=sys.stderr)


_FLAGS = flags.FlagValues()
flags.DEFINE_string("gt_json", None, "Ground-truth JSON (COCO panoptic format).", required=True,
                    flag_values=_FLAGS)
flags.DEFINE_string("gt_folder", None, "Ground-truth PNG folder (default: gt_json without .json).",
                    flag_values=_FLAGS)
flags.DEFINE_string("pred_json", None, "Prediction JSON.", required=True, flag_values=_FLAGS)
flags.DEFINE_string("pred_folder", None,
                    "Prediction PNG folder (default: pred_json without .json).",
                    flag_values=_FLAGS)
flags.DEFINE_enum("format", "coco", ("coco", "cityscapes"),
                  "Table layout: panopticapi's (coco) or cityscapesScripts' (cityscapes, with one "
                  "row per category); the numbers are the same.", flag_values=_FLAGS)
flags.DEFINE_string("output_json", None, "Where to write the results as JSON.",
                    flag_values=_FLAGS)
flags.DEFINE_integer("num_workers", None, "Worker processes (default: one per CPU core).",
                     flag_values=_FLAGS)
flags.DEFINE_bool("progress", True, "Show a progress bar (--noprogress hides it).",
                  flag_values=_FLAGS)


def _evaluate_command(f: flags.FlagValues) -> int:
  start = time.time()
  gt_folder = f.gt_folder or os.path.splitext(f.gt_json)[0]
  pred_folder = f.pred_folder or os.path.splitext(f.pred_json)[0]
  sums = accumulate(f.gt_json, gt_folder, f.pred_json, pred_folder, f.num_workers,
                    progress=f.progress)
  results = pq_stats.summarize(sums["category_ids"], sums["is_thing"], sums["iou"], sums["tp"],
                               sums["fp"], sums["fn"])
  names = dict(zip(sums["category_ids"], sums["names"]))
  print(pq_stats.format_table(results, style=f.format, category_names=names))
  print("Time elapsed: {:0.2f} seconds".format(time.time() - start))
  if f.output_json:
    text = json.dumps(pq_stats.to_json_ready(results), indent=2, sort_keys=True)
    panoptic_png.atomic_write_bytes(f.output_json, (text + "\n").encode("utf-8"))
  return 0


main = cli.command(_FLAGS, _evaluate_command, __doc__, input_errors=(PanopticInputError,))


if __name__ == "__main__":
  sys.exit(main())
