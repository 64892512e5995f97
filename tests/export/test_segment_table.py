"""Segment table of a panoptic map: one row per panoptic id, most confident first."""
import numpy as np
import tensorflow as tf

from kmax_tf.export import segment_table as st

DIVISOR = 256
VOID = 0
SLOTS = 8


def _maps():
  """Two 6x8 images. Image 0: thing slots 1 and 3 (class 2), stuff class 5 from
  slots 2 and 5, void pixels that read instance 1; image 1: one stuff slot and
  batch padding (-1)."""
  instance = np.ones([2, 6, 8], np.int32)
  panoptic = np.full([2, 6, 8], VOID, np.int32)
  scores = np.zeros([2, 6, 8], np.float32)

  def paint(b, rows, cols, position, class_id, is_thing, score):
    instance[b, rows, cols] = position
    panoptic[b, rows, cols] = class_id * DIVISOR + (position if is_thing else 0)
    scores[b, rows, cols] = score

  paint(0, slice(0, 2), slice(0, 4), 1, 2, True, 0.9)
  paint(0, slice(0, 2), slice(4, 8), 2, 5, False, 0.8)
  paint(0, slice(2, 3), slice(0, 8), 3, 2, True, 0.75)
  paint(0, slice(3, 5), slice(0, 8), 5, 5, False, 0.6)
  paint(1, slice(0, 3), slice(0, 5), 4, 7, False, 0.55)
  panoptic[1, :, 5:] = -1
  panoptic[1, 3:] = -1
  return panoptic, instance, scores


def test_segment_table_rows():
  panoptic, instance, scores = _maps()
  out = st.segment_table(tf.constant(panoptic), tf.constant(instance), tf.constant(scores),
                         SLOTS, DIVISOR, VOID)
  out = {k: v.numpy() for k, v in out.items()}
  np.testing.assert_array_equal(out[st.NUM_SEGMENTS], [3, 1])
  pad = [-1] * (SLOTS - 3)
  np.testing.assert_array_equal(out[st.SEGMENT_IDS][0], [2 * DIVISOR + 1, 5 * DIVISOR,
                                                         2 * DIVISOR + 3] + pad)
  np.testing.assert_array_equal(out[st.SEGMENT_CLASS_IDS][0], [2, 5, 2] + pad)
  np.testing.assert_allclose(out[st.SEGMENT_SCORES][0], [0.9, 0.8, 0.75] + [0] * (SLOTS - 3))
  np.testing.assert_array_equal(out[st.SEGMENT_AREAS][0], [8, 8 + 16, 8] + [0] * (SLOTS - 3))
  np.testing.assert_array_equal(out[st.SEGMENT_IDS][1], [7 * DIVISOR] + [-1] * (SLOTS - 1))
  np.testing.assert_array_equal(out[st.SEGMENT_AREAS][1], [15] + [0] * (SLOTS - 1))


def test_areas_match_map_histogram():
  panoptic, instance, scores = _maps()
  out = st.segment_table(tf.constant(panoptic), tf.constant(instance), tf.constant(scores),
                         SLOTS, DIVISOR, VOID)
  out = {k: v.numpy() for k, v in out.items()}
  for b in range(2):
    ids, counts = np.unique(panoptic[b][panoptic[b] > VOID], return_counts=True)
    n = int(out[st.NUM_SEGMENTS][b])
    listed = dict(zip(out[st.SEGMENT_IDS][b, :n].tolist(), out[st.SEGMENT_AREAS][b, :n].tolist()))
    assert listed == dict(zip(ids.tolist(), counts.tolist()))
