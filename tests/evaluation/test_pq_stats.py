"""pq_stats: panopticapi's averaging and table layout."""
import pytest

from kmax_tf.evaluation import pq_stats


def test_summarize_matches_panopticapi_arithmetic():
  from panopticapi.evaluation import PQStat
  stat = PQStat()
  sums = {1: (1.7, 2, 1, 0), 2: (0.0, 0, 0, 0), 3: (0.6, 1, 0, 3)}
  for cid, (iou, tp, fp, fn) in sums.items():
    stat[cid].iou, stat[cid].tp, stat[cid].fp, stat[cid].fn = iou, tp, fp, fn
  categories = {1: {"isthing": 1}, 2: {"isthing": 1}, 3: {"isthing": 0}}
  ours = pq_stats.summarize(list(sums), [True, True, False], *zip(*sums.values()))
  for split, thing in pq_stats.SPLITS:
    theirs, per_class = stat.pq_average(categories, isthing=thing)
    assert ours[split] == pytest.approx(theirs, abs=1e-15)
    if split == "All":
      assert ours["per_class"] == per_class


def test_empty_split_is_zero_and_json_ready():
  results = pq_stats.summarize([4], [False], [0.0], [0], [0], [0])
  assert results["Things"] == {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 0}
  ready = pq_stats.to_json_ready(results)
  assert ready["per_class"] == {4: {"pq": 0.0, "sq": 0.0, "rq": 0.0}}
  table = pq_stats.format_table(results).splitlines()
  assert table[0] == "          |    PQ     SQ     RQ     N"
  assert table[2] == "All       |   0.0    0.0    0.0     0"
  cityscapes = pq_stats.format_table(results, "cityscapes", {4: "road"}).splitlines()
  assert cityscapes[1] == "road          |   0.0    0.0    0.0"
