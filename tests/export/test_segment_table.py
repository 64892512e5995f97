"""Segment table of a panoptic map: one row per panoptic id, most confident first."""
import numpy as np
import tensorflow as tf

from kmax_tf import outputs
from kmax_tf.export import segment_table as st
from kmax_tf.post_processing import mask_wise_post_processor as mwp

DIVISOR = 256
VOID = 0
SLOTS = 8


def _maps():
  """Two 6x8 images and their per-slot tables. Image 0: thing slots 1 and 3
  (class 2), stuff class 5 from slots 2 and 5, void pixels that read instance 1;
  image 1: one stuff slot and batch padding (-1). Positions that cover no
  pixel (slot 4 of image 0, a slot lost when the maps were resized) still have
  table entries, which must not be listed."""
  instance = np.ones([2, 6, 8], np.int32)
  panoptic = np.full([2, 6, 8], VOID, np.int32)
  slot_ids = np.full([2, SLOTS], VOID, np.int32)
  slot_ids[0, 3] = 9 * DIVISOR + 4
  slot_scores = np.linspace(0.99, 0.5, 2 * SLOTS, dtype=np.float32).reshape(2, SLOTS)

  def paint(b, rows, cols, position, class_id, is_thing, score):
    instance[b, rows, cols] = position
    panoptic[b, rows, cols] = class_id * DIVISOR + (position if is_thing else 0)
    slot_ids[b, position - 1] = class_id * DIVISOR + (position if is_thing else 0)
    slot_scores[b, position - 1] = score

  paint(0, slice(0, 2), slice(0, 4), 1, 2, True, 0.9)
  paint(0, slice(0, 2), slice(4, 8), 2, 5, False, 0.8)
  paint(0, slice(2, 3), slice(0, 8), 3, 2, True, 0.75)
  paint(0, slice(3, 5), slice(0, 8), 5, 5, False, 0.6)
  paint(1, slice(0, 3), slice(0, 5), 4, 7, False, 0.55)
  panoptic[1, :, 5:] = -1
  panoptic[1, 3:] = -1
  return panoptic, instance, slot_ids, slot_scores


def _table(panoptic, instance, slot_ids, slot_scores):
  out = st.segment_table(tf.constant(panoptic), tf.constant(instance), tf.constant(slot_ids),
                         tf.constant(slot_scores), DIVISOR, VOID)
  return {k: v.numpy() for k, v in out.items()}


def test_segment_table_rows():
  maps = _maps()
  out = _table(*maps)
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
  maps = _maps()
  out = _table(*maps)
  panoptic = maps[0]
  for b in range(2):
    ids, counts = np.unique(panoptic[b][panoptic[b] > VOID], return_counts=True)
    n = int(out[st.NUM_SEGMENTS][b])
    listed = dict(zip(out[st.SEGMENT_IDS][b, :n].tolist(), out[st.SEGMENT_AREAS][b, :n].tolist()))
    assert listed == dict(zip(ids.tolist(), counts.tolist()))


def test_table_of_post_processor_output_matches_its_maps():
  """End to end on the post-processor: listed ids/areas are the map's histogram;
  each segment is listed at its first-pasted slot, with that slot's score (both
  read back from the maps)."""
  post = mwp.MaskWisePostProcessor(thing_class_ids=[0, 1, 2], label_divisor=DIVISOR,
                                   ignore_label=6, output_size=[24, 32], thing_area_limit=4,
                                   stuff_area_limit=8)
  num_slots = 12
  mask_logits = tf.random.stateless_normal([2, 6, 8, num_slots], [5, 6]) * 8.0
  class_logits = tf.random.stateless_normal([2, num_slots, 7], [7, 8]) * 6.0
  maps = post({outputs.PIXEL_SPACE_MASK_LOGITS: mask_logits,
               outputs.TRANSFORMER_CLASS_LOGITS: class_logits})
  void = 6 * DIVISOR
  out = st.segment_table(maps[outputs.PANOPTIC_PRED], maps[outputs.INSTANCE_PRED],
                         maps[outputs.PASTED_SLOT_PANOPTIC_IDS], maps[outputs.PASTED_SLOT_SCORES],
                         DIVISOR, void)
  out = {k: v.numpy() for k, v in out.items()}
  panoptic = maps[outputs.PANOPTIC_PRED].numpy()
  scores = maps[outputs.SEMANTIC_SCORES].numpy()
  instance = maps[outputs.INSTANCE_PRED].numpy()
  total = 0
  for b in range(2):
    ids, counts = np.unique(panoptic[b][panoptic[b] != void], return_counts=True)
    n = int(out[st.NUM_SEGMENTS][b])
    total += n
    assert dict(zip(out[st.SEGMENT_IDS][b, :n].tolist(),
                    out[st.SEGMENT_AREAS][b, :n].tolist())) == dict(zip(ids.tolist(),
                                                                        counts.tolist()))
    first_positions = []
    for i in range(n):
      segment = panoptic[b] == out[st.SEGMENT_IDS][b, i]
      first = instance[b][segment].min()
      first_positions.append(first)
      assert out[st.SEGMENT_SCORES][b, i] == scores[b][segment & (instance[b] == first)][0]
    assert first_positions == sorted(first_positions)
  assert total >= 3, "the random logits should give several segments; the check is vacuous"
