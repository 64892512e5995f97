"""Benchmark: file-based panoptic quality against panopticapi and hotcoco.

Scales the 16 real COCO val2017 panoptic labels of ../shared/fixtures/coco_val2017_16 up to
--pairs image pairs (each repeat under new image ids and file names; the predictions are the
ground truth edited as in tests/evaluation: drop, merge, relabel, shift, spurious segment), then
times, on the same files:
  - kmax_tf.evaluation.panoptic.evaluate (worker processes = --workers),
  - panopticapi pq_compute (its own multiprocessing, one process per CPU core),
  - hotcoco.panoptic.pq_compute (Rust; the speed anchor).
Each is run --repeats times; the best and median wall-clock times are reported, the numbers are
checked against panopticapi's, and everything is written to --output_json. Because the cores may
be shared, it also reports single-process CPU time per pair (ours with one worker vs
panopticapi's pq_compute_single_core), which other load disturbs much less.

  python benchmarks/evaluation.py [--pairs=512] [--repeats=3] [--workers=2] \
      [--output_json=/tmp/kmax_tf_benchmark_evaluation.json]
"""
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time

from absl import flags
import numpy as np

from kmax_tf import cli
from kmax_tf.evaluation import panoptic
from kmax_tf.evaluation import panoptic_png
from kmax_tf.testing import deeplab2_fixtures


def _edit(ids, segments, rng, category_ids):
  """A plausible prediction: ground truth with one segment dropped, two merged, one relabelled,
  shifted by a few pixels, and one spurious box."""
  pred = ids.copy()
  segments = [dict(s, iscrowd=0) for s in segments]
  by_area = sorted(segments, key=lambda s: -s["area"])
  if len(by_area) > 3:
    pred[pred == by_area[3]["id"]] = 0
    segments.remove(by_area[3])
  if len(by_area) > 2:
    pred[pred == by_area[2]["id"]] = by_area[1]["id"]
    segments.remove(by_area[2])
  segments[0]["category_id"] = int(rng.choice(category_ids))
  dy, dx = (int(v) for v in rng.integers(-4, 5, 2))
  pred = np.roll(pred, (dy, dx), axis=(0, 1))
  h, w = pred.shape
  new_id = int(pred.max()) + 1
  y, x = int(rng.integers(h // 2)), int(rng.integers(w // 2))
  pred[y:y + h // 5, x:x + w // 6] = new_id
  segments.append({"id": new_id, "category_id": int(rng.choice(category_ids)), "iscrowd": 0})
  labels, counts = np.unique(pred, return_counts=True)
  area = dict(zip(labels.tolist(), counts.tolist()))
  kept = [dict(s, area=area[s["id"]]) for s in segments if s["id"] in area]
  return pred, kept


def build_dataset(out_dir, pairs, seed=0):
  """Writes gt.json + gt/ and pred.json + pred/ with `pairs` images; returns their paths."""
  root = os.path.join(deeplab2_fixtures.fixtures_dir(), "coco_val2017_16", "annotations")
  with open(os.path.join(root, "panoptic_val2017.json")) as f:
    data = json.load(f)
  rng = np.random.default_rng(seed)
  category_ids = [c["id"] for c in data["categories"]]
  source = []
  for ann in data["annotations"]:
    path = os.path.join(root, "panoptic_val2017", ann["file_name"])
    with open(path, "rb") as f:
      gt_bytes = f.read()
    ids = panoptic_png.read_segment_ids(path)
    pred, segments = _edit(ids, ann["segments_info"], rng, category_ids)
    source.append((ann, gt_bytes, panoptic_png.encode_png(panoptic_png.id_to_rgb(pred)), segments))
  gt_anns, pred_anns, images = [], [], []
  for folder in ("gt", "pred"):
    os.makedirs(os.path.join(out_dir, folder), exist_ok=True)
  for k in range(pairs):
    ann, gt_bytes, pred_bytes, segments = source[k % len(source)]
    image_id = (k // len(source)) * 1_000_000 + ann["image_id"]
    name = f"{image_id:012d}.png"
    with open(os.path.join(out_dir, "gt", name), "wb") as f:
      f.write(gt_bytes)
    with open(os.path.join(out_dir, "pred", name), "wb") as f:
      f.write(pred_bytes)
    gt_anns.append(dict(ann, image_id=image_id, file_name=name))
    pred_anns.append({"image_id": image_id, "file_name": name, "segments_info": segments})
    images.append({"id": image_id, "file_name": name.replace(".png", ".jpg")})
  gt = dict(data, annotations=gt_anns, images=images)
  with open(os.path.join(out_dir, "gt.json"), "w") as f:
    json.dump(gt, f)
  with open(os.path.join(out_dir, "pred.json"), "w") as f:
    json.dump({"annotations": pred_anns}, f)
  return {"gt_json": os.path.join(out_dir, "gt.json"), "gt_folder": os.path.join(out_dir, "gt"),
          "pred_json": os.path.join(out_dir, "pred.json"),
          "pred_folder": os.path.join(out_dir, "pred")}


def _time(fn, repeats):
  seconds, result = [], None
  for _ in range(repeats):
    with contextlib.redirect_stdout(io.StringIO()):
      start = time.perf_counter()
      result = fn()
      seconds.append(time.perf_counter() - start)
  return {"best_s": min(seconds), "median_s": statistics.median(seconds), "runs_s": seconds}, result


def _cpu_per_pair(paths, pairs, repeats):
  """Single-process CPU time (process_time) per image pair: less sensitive than wall-clock time
  to other processes sharing the cores."""
  from panopticapi.evaluation import pq_compute_single_core
  with open(paths["gt_json"]) as f:
    gt = json.load(f)
  with open(paths["pred_json"]) as f:
    pred = {a["image_id"]: a for a in json.load(f)["annotations"]}
  categories = {c["id"]: c for c in gt["categories"]}
  matched = [(a, pred[a["image_id"]]) for a in gt["annotations"]]
  runs = {"kmax_tf": lambda: panoptic.evaluate(**paths, num_workers=1, progress=False),
          "panopticapi": lambda: pq_compute_single_core(0, matched, paths["gt_folder"],
                                                        paths["pred_folder"], categories)}
  out = {}
  for name, fn in runs.items():
    best = float("inf")
    for _ in range(repeats):
      with contextlib.redirect_stdout(io.StringIO()):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    out[name] = 1000 * best / pairs
  return out


def _max_difference(candidate, reference):
  worst = 0.0
  for split in ("All", "Things", "Stuff"):
    for key in ("pq", "sq", "rq"):
      worst = max(worst, abs(candidate[split][key] - reference[split][key]))
  for cid, row in candidate["per_class"].items():
    if row["pq"] == -1.0:  # hotcoco's mark for a category absent from both sides (0 elsewhere)
      continue
    for key in ("pq", "sq", "rq"):
      worst = max(worst, abs(row[key] - reference["per_class"][int(cid)][key]))
  return worst


_FLAGS = flags.FlagValues()
flags.DEFINE_integer("pairs", 512, "Image pairs (the 16 fixture images repeated).",
                     flag_values=_FLAGS)
flags.DEFINE_integer("repeats", 3, "Runs of each evaluator.", flag_values=_FLAGS)
flags.DEFINE_integer("workers", os.cpu_count(), "Worker processes of kmax_tf's evaluator.",
                     flag_values=_FLAGS)
flags.DEFINE_string("output_json", "/tmp/kmax_tf_benchmark_evaluation.json",
                    "JSON file to write.", flag_values=_FLAGS)


def _benchmark(args: flags.FlagValues) -> int:
  from panopticapi.evaluation import pq_compute as panopticapi_pq_compute
  import hotcoco
  from hotcoco.panoptic import pq_compute as hotcoco_pq_compute

  with tempfile.TemporaryDirectory() as tmp:
    paths = build_dataset(tmp, args.pairs)
    timings, results = {}, {}
    timings["kmax_tf"], results["kmax_tf"] = _time(
        lambda: panoptic.evaluate(**paths, num_workers=args.workers, progress=False), args.repeats)
    timings["panopticapi"], results["panopticapi"] = _time(
        lambda: panopticapi_pq_compute(paths["gt_json"], paths["pred_json"], paths["gt_folder"],
                                       paths["pred_folder"]), args.repeats)
    timings["hotcoco"], results["hotcoco"] = _time(
        lambda: hotcoco_pq_compute(paths["gt_json"], paths["pred_json"], paths["gt_folder"],
                                   paths["pred_folder"]), args.repeats)

    cpu_ms = _cpu_per_pair(paths, args.pairs, args.repeats)

  reference = results["panopticapi"]
  report = {
      "image_pairs": args.pairs, "repeats": args.repeats, "kmax_tf_workers": args.workers,
      "cpu_count": os.cpu_count(), "load_average_1m_after": os.getloadavg()[0],
      "python": platform.python_version(), "hotcoco_version": getattr(hotcoco, "__version__", "?"),
      "timings": timings,
      "speedup_vs_panopticapi": {k: timings["panopticapi"]["best_s"] / v["best_s"]
                                 for k, v in timings.items()},
      "pq_all": {k: r["All"]["pq"] for k, r in results.items()},
      "max_abs_difference_vs_panopticapi": {k: _max_difference(r, reference)
                                            for k, r in results.items() if k != "panopticapi"},
      "single_process_cpu_ms_per_pair": cpu_ms,
      "single_process_cpu_speedup": cpu_ms["panopticapi"] / cpu_ms["kmax_tf"],
  }
  print(f"{args.pairs} image pairs, {os.cpu_count()} CPU cores, best of {args.repeats} runs")
  print(f"{'evaluator':<12s} {'best s':>8s} {'median s':>9s} {'img/s':>8s} {'vs panopticapi':>15s}"
        f" {'PQ':>8s}")
  for name, t in timings.items():
    print(f"{name:<12s} {t['best_s']:8.2f} {t['median_s']:9.2f} {args.pairs / t['best_s']:8.1f} "
          f"{report['speedup_vs_panopticapi'][name]:14.2f}x {100 * report['pq_all'][name]:8.3f}")
  for name, diff in report["max_abs_difference_vs_panopticapi"].items():
    print(f"max |{name} - panopticapi| over PQ/SQ/RQ (all splits, per class): {diff:.3g}")
  print(f"single process, CPU ms per pair: kmax_tf {cpu_ms['kmax_tf']:.2f}, panopticapi "
        f"{cpu_ms['panopticapi']:.2f} ({report['single_process_cpu_speedup']:.2f}x)")
  print(f"1-minute load average after the runs: {report['load_average_1m_after']:.2f}")
  with open(args.output_json, "w") as f:
    json.dump(report, f, indent=2)
  print(f"wrote {args.output_json}")
  return 0


main = cli.command(_FLAGS, _benchmark, __doc__)


if __name__ == "__main__":
  sys.exit(main())
