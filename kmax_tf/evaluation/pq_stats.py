"""Panoptic-quality summaries and tables (Kirillov et al., "Panoptic Segmentation", CVPR 2019).

Both the streaming metric and the file-based evaluator accumulate, per category, the summed IoU
of matched segments and the TP / FP / FN counts. This module turns those sums into the result
dict the official tools return (panopticapi `pq_compute`, cityscapesScripts `evaluatePanoptic`):

  {"All": {"pq", "sq", "rq", "n"}, "Things": {...}, "Stuff": {...},
   "per_class": {category_id: {"pq", "sq", "rq"}}}

and prints their tables. The arithmetic and the summation order follow panopticapi so the numbers
agree with it to the last few ulps: a category is counted in `n` only when tp + fp + fn > 0.
"""
from typing import Mapping, Optional, Sequence

import numpy as np

SPLITS = (("All", None), ("Things", True), ("Stuff", False))


def summarize(category_ids: Sequence[int], is_thing: Sequence[bool], iou, tp, fp, fn) -> dict:
  """Returns panopticapi-style results from per-category sums aligned with `category_ids`.

  Args:
    category_ids: [C] category ids, the keys of "per_class".
    is_thing: [C] bools, True for thing categories.
    iou: [C] summed IoU of the matched (true positive) segments.
    tp: [C] true-positive segment counts.
    fp: [C] false-positive segment counts.
    fn: [C] false-negative segment counts.

  Returns:
    The result dict of the module docstring; pq, sq, rq are fractions in 0..1.
  """
  iou = np.asarray(iou, np.float64)
  tp, fp, fn = (np.asarray(x, np.float64) for x in (tp, fp, fn))
  per_class = {}
  for k, cid in enumerate(category_ids):
    denominator = tp[k] + 0.5 * fp[k] + 0.5 * fn[k]
    if tp[k] + fp[k] + fn[k] == 0:
      per_class[int(cid)] = {"pq": 0.0, "sq": 0.0, "rq": 0.0}
    else:
      per_class[int(cid)] = {"pq": float(iou[k] / denominator),
                             "sq": float(iou[k] / tp[k]) if tp[k] else 0.0,
                             "rq": float(tp[k] / denominator)}
  results = {}
  for split, thing in SPLITS:
    pq = sq = rq = 0.0
    n = 0
    for k, cid in enumerate(category_ids):
      if thing is not None and bool(is_thing[k]) != thing:
        continue
      if tp[k] + fp[k] + fn[k] == 0:
        continue
      n += 1
      pq += per_class[int(cid)]["pq"]
      sq += per_class[int(cid)]["sq"]
      rq += per_class[int(cid)]["rq"]
    # panopticapi divides by zero here; an empty split reads better as zeros with n = 0.
    results[split] = ({"pq": pq / n, "sq": sq / n, "rq": rq / n, "n": n} if n else
                      {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 0})
  results["per_class"] = per_class
  return results


def format_table(results: Mapping, style: str = "coco",
                 category_names: Optional[Mapping[int, str]] = None) -> str:
  """The table panopticapi (`style="coco"`) or cityscapesScripts (`"cityscapes"`) prints.

  Args:
    results: a summarize() result.
    style: "coco" (All/Things/Stuff rows) or "cityscapes" (a row per category
      first).
    category_names: category id -> name for the cityscapes rows; ids are
      printed where a name is missing.

  Returns:
    The table as one string, values in percent.
  """
  lines = []
  if style == "coco":
    width = 10
    lines.append("{:10s}| {:>5s}  {:>5s}  {:>5s} {:>5s}".format("", "PQ", "SQ", "RQ", "N"))
    lines.append("-" * (10 + 7 * 4))
  elif style == "cityscapes":
    width = 14
    lines.append("{:14s}| {:>5s}  {:>5s}  {:>5s}".format("Category", "PQ", "SQ", "RQ"))
    for cid in sorted(results["per_class"]):
      row = results["per_class"][cid]
      name = (category_names or {}).get(cid, str(cid))
      lines.append("{:14s}| {:5.1f}  {:5.1f}  {:5.1f}".format(
          name, 100 * row["pq"], 100 * row["sq"], 100 * row["rq"]))
    lines.append("-" * 41)
    lines.append("{:14s}| {:>5s}  {:>5s}  {:>5s} {:>5s}".format("", "PQ", "SQ", "RQ", "N"))
  else:
    raise ValueError(f"Unknown table style {style!r}; expected 'coco' or 'cityscapes'.")
  for split, _ in SPLITS:
    row = results[split]
    lines.append(("{:%ds}| {:5.1f}  {:5.1f}  {:5.1f} {:5d}" % width).format(
        split, 100 * row["pq"], 100 * row["sq"], 100 * row["rq"], row["n"]))
  return "\n".join(lines)


def to_json_ready(results: Mapping) -> dict:
  """Copies `results` with plain Python numbers (JSON turns the category ids into strings).

  Args:
    results: a summarize() result, possibly holding numpy numbers.
  """
  out = {split: {k: (int(v) if k == "n" else float(v)) for k, v in results[split].items()}
         for split, _ in SPLITS}
  out["per_class"] = {int(cid): {k: float(v) for k, v in row.items()}
                      for cid, row in results["per_class"].items()}
  return out
