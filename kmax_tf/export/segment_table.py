"""Per-segment summary of a panoptic map, in TFLite-builtin operations.

kMaX-DeepLab pastes its mask
slots in order of confidence; the post-processor's `instance_pred` is the
paste position (1-based) of the slot covering each pixel, and it also returns
per-slot tables in paste order: the panoptic id each slot's pixels carry and the
slot's class confidence. A segment of the panoptic map is the set of
pixels sharing one panoptic id: a thing segment is one slot, a stuff segment
may gather several slots of its class, and is reported once, at the position
of its most confident slot, with the summed area.

Areas are counted on the maps returned to the user (after resizing to the
input size), so they count returned pixels and only slots that still cover a
returned pixel are listed; ids and scores come from the per-slot tables, so
the pixels are reduced once (one segment sum), not once per column. A segment
sum stands in for a histogram (bincount has no TFLite kernel).
"""
from typing import Dict

import tensorflow as tf

SEGMENT_IDS = "segment_ids"
SEGMENT_CLASS_IDS = "segment_class_ids"
SEGMENT_SCORES = "segment_scores"
SEGMENT_AREAS = "segment_areas"
NUM_SEGMENTS = "num_segments"
SEGMENT_KEYS = (SEGMENT_IDS, SEGMENT_CLASS_IDS, SEGMENT_SCORES, SEGMENT_AREAS, NUM_SEGMENTS)


def segment_table(panoptic: tf.Tensor, instance: tf.Tensor, slot_panoptic_ids: tf.Tensor,
                  slot_scores: tf.Tensor, label_divisor: int,
                  void_id: int) -> Dict[str, tf.Tensor]:
  """Segments of each image, most confident first, padded to the slot count N.

  Args:
    panoptic: int32 [B, H, W]; `void_id` (and negative padding) is no segment.
    instance: int32 [B, H, W] paste position in 1..N.
    slot_panoptic_ids: int32 [B, N] panoptic id of the pixels pasted at each
      position (the post-processor's pasted_slot_panoptic_ids).
    slot_scores: float32 [B, N] class confidence per position.
    label_divisor: panoptic id = class id * label_divisor + instance id.
    void_id: panoptic id of void pixels.

  Returns:
    segment_ids int32 [B, N] (panoptic ids, -1 padding), segment_class_ids
    int32 [B, N] (-1 padding), segment_scores float32 [B, N] (0 padding),
    segment_areas int32 [B, N] (0 padding), num_segments int32 [B].
  """
  num_slots = slot_panoptic_ids.shape[-1]
  if num_slots is None:
    raise ValueError("slot_panoptic_ids must have a static slot axis; got shape "
                     f"{slot_panoptic_ids.shape}")
  batch = tf.shape(panoptic)[0]
  valid = tf.logical_and(tf.not_equal(panoptic, void_id), panoptic >= 0)
  # Row b * (N + 1) + position; position 0 collects every non-segment pixel.
  position = tf.where(valid, tf.clip_by_value(instance, 1, num_slots), 0)
  rows = tf.reshape(position + tf.range(batch)[:, tf.newaxis, tf.newaxis] * (num_slots + 1),
                    [-1])
  area = tf.math.unsorted_segment_sum(tf.ones_like(rows), rows, batch * (num_slots + 1))
  area = tf.reshape(area, [batch, num_slots + 1])[:, 1:]
  present = area > 0
  slot_id = tf.where(present, slot_panoptic_ids, -1)
  slot_score = tf.where(present, slot_scores, 0.0)

  # Slots sharing a panoptic id (stuff) form one segment, listed at its first slot.
  same = tf.logical_and(tf.equal(slot_id[:, :, tf.newaxis], slot_id[:, tf.newaxis, :]),
                        present[:, tf.newaxis, :])
  earlier = tf.linalg.band_part(tf.ones([num_slots, num_slots], tf.int32), -1, 0) \
      - tf.eye(num_slots, dtype=tf.int32)
  has_earlier = tf.reduce_any(tf.logical_and(same, earlier[tf.newaxis] > 0), axis=-1)
  first = tf.logical_and(present, tf.logical_not(has_earlier))
  segment_area = tf.reduce_sum(tf.cast(same, tf.int32) * area[:, tf.newaxis, :], axis=-1)

  # Listed segments first, in paste (confidence) order.
  rank_key = tf.where(first, num_slots - tf.range(num_slots)[tf.newaxis], 0)
  order = tf.math.top_k(rank_key, k=num_slots, sorted=True).indices
  listed = tf.gather(first, order, batch_dims=1)
  ids = tf.where(listed, tf.gather(slot_id, order, batch_dims=1), -1)
  return {
      SEGMENT_IDS: ids,
      SEGMENT_CLASS_IDS: tf.where(listed, ids // label_divisor, -1),
      SEGMENT_SCORES: tf.where(listed, tf.gather(slot_score, order, batch_dims=1), 0.0),
      SEGMENT_AREAS: tf.where(listed, tf.gather(segment_area, order, batch_dims=1), 0),
      NUM_SEGMENTS: tf.reduce_sum(tf.cast(first, tf.int32), axis=-1),
  }
