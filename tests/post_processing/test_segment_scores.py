"""Tests of kmax_tf.post_processing.segment_scores."""
import numpy as np
import pytest

from kmax_tf.post_processing.segment_scores import segment_scores


def test_each_id_gets_the_highest_score_of_its_pixels():
  rng = np.random.default_rng(0)
  panoptic = rng.integers(0, 6, size=(37, 23)) * 1000 + rng.integers(0, 3, size=(37, 23))
  scores = rng.random((37, 23)).astype(np.float32)
  expected = {int(i): float(scores[panoptic == i].max()) for i in np.unique(panoptic)}
  assert segment_scores(panoptic, scores) == expected


def test_mismatched_shapes_are_refused():
  with pytest.raises(ValueError, match=r"\(4, 5\).*\(5, 4\)"):
    segment_scores(np.zeros((4, 5), np.int32), np.zeros((5, 4), np.float32))
