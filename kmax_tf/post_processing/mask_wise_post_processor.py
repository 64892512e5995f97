"""Mask-wise panoptic post-processing of kMaX-DeepLab outputs.

kMaX-DeepLab turns its N mask
slots into a panoptic map the mask-wise way of MaskFormer (Cheng et al., NeurIPS
2021), Panoptic SegFormer (Li et al., CVPR 2022) and CMT-DeepLab (Yu et al.,
CVPR 2022): every slot gives a binary mask (pixel probability above a threshold);
the slots are sorted by class confidence x mean mask probability; the masks are
pasted on an empty canvas from the most to the least confident, a mask being
dropped when its class is not confident enough or when too much of it is already
covered. Thing segments and stuff classes smaller than an area limit become void.
The semantic map comes from the threshold-free pixel-wise rule of MaX-DeepLab
(Wang et al., CVPR 2021): argmax over slots, then the class of the winning slot.

The maps equal DeepLab2's `max_deeplab.PostProcessor` with
`transformer_post_processing: "maskwise"` (the scores to float32 rounding),
including its quirks:
`instance_pred` is the position in the sorted slot order plus one, also on void
pixels (which read 1), and `instance_scores` is all zeros for an image in which
no slot reaches either class threshold. Slots with equal scores are pasted in
slot order (score, then slot index), and slots whose class logits are the same
numbers get bit-equal confidences on every CPU kernel (see `_class_predictions`),
so how such ties fall, and the panoptic ids that follow, never depends on the
kernels.

Only operations with TFLite builtin kernels are used (no bincount, float64,
nearest-neighbour resize or data-dependent loop bounds): the area of a segment
is the pixel count of its pasted mask, which the paste loop already knows, so no
histogram of the final map is needed.
"""
from typing import Dict, Sequence

import tensorflow as tf
import tf_keras

from kmax_tf import outputs
from kmax_tf.layers import align_corners_resize

# With a pixel threshold of at least this, no pixel is in more than two binary
# masks (three softmax probabilities above 1/3 would sum past 1; the margin
# covers float32 rounding of the softmax), which the fast paste relies on.
TWO_MASK_THRESHOLD = 0.34


def _stuff_class_ids(num_classes: int, thing_class_ids: Sequence[int],
                    ignore_label: int):
  """Stuff class ids in DeepLab2's order: all non-void, non-thing ids sorted.

  `num_classes` counts thing and stuff classes without void. When the void label
  lies inside [0, num_classes] it is skipped, so the ids run up to num_classes.
  """
  if ignore_label >= num_classes:
    candidates = range(num_classes)
  else:
    candidates = [c for c in range(num_classes + 1) if c != ignore_label]
  return sorted(set(candidates) - set(thing_class_ids))


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class MaskWisePostProcessor(tf_keras.layers.Layer):
  """Mask-wise panoptic post-processor (DeepLab2 'maskwise').

  Input dict: `pixel_space_mask_logits` [B, h, w, N] and
  `transformer_class_logits` [B, N, K + 1] (last channel void).
  Output dict (all [B, H, W], (H, W) = output_size): panoptic_pred (int32,
  semantic * label_divisor + instance), instance_pred (int32), semantic_pred
  (int32), instance_scores (float32), semantic_scores (float32); and the
  per-slot tables pasted_slot_panoptic_ids (int32 [B, N]) and
  pasted_slot_scores (float32 [B, N]) in paste order (see kmax_tf.outputs).

  Class channel k < len(thing_class_ids) is thing class thing_class_ids[k]; the
  channels after it are the stuff classes in increasing id order (void skipped).

  Args:
    thing_class_ids: dataset class ids of the thing classes, in the order of
      the first class-logit channels.
    label_divisor: panoptic id = semantic class * label_divisor + instance id.
    ignore_label: void class id; void pixels get panoptic id
      ignore_label * label_divisor.
    output_size: (height, width) in pixels of the output maps; the mask logits
      are resized to it (bilinear, align_corners=True) before thresholding.
    thing_class_threshold: minimum class probability (0..1, softmax over all
      K + 1 channels) for a thing slot to be pasted.
    stuff_class_threshold: the same for a stuff slot.
    overlap_threshold: a slot is pasted only if more than this fraction (0..1)
      of its binary mask is still uncovered by more confident slots.
    thing_area_limit: thing segments of fewer pixels (at output_size) become
      void; <= 0 keeps all.
    stuff_area_limit: stuff classes whose pasted slots cover fewer pixels (at
      output_size) become void; <= 0 keeps all.
    pixel_confidence_threshold: a pixel belongs to a slot's binary mask when its
      mask probability (softmax over the N slots) exceeds this (0..1).
    reorder_class_weight: exponent of the class confidence in the paste-order
      score confidence ** w_class * mean mask probability ** w_mask.
    reorder_mask_weight: exponent of the mean mask probability in that score.
    **kwargs: tf_keras.layers.Layer arguments; dtype defaults to float32.
  """

  def __init__(self,
               thing_class_ids: Sequence[int],
               label_divisor: int,
               ignore_label: int,
               output_size: Sequence[int],
               thing_class_threshold: float = 0.7,
               stuff_class_threshold: float = 0.5,
               overlap_threshold: float = 0.8,
               thing_area_limit: int = 400,
               stuff_area_limit: int = 6400,
               pixel_confidence_threshold: float = 0.4,
               reorder_class_weight: float = 1.0,
               reorder_mask_weight: float = 1.0,
               **kwargs):
    # Thresholds, scores and area counts are float32 work even when the network
    # runs in mixed precision: bfloat16 would round probabilities near the
    # thresholds and cannot count pixel areas exactly beyond 256.
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)
    self.thing_class_ids = [int(c) for c in thing_class_ids]
    self.label_divisor = int(label_divisor)
    self.ignore_label = int(ignore_label)
    self.output_size = [int(s) for s in output_size]
    self.thing_class_threshold = float(thing_class_threshold)
    self.stuff_class_threshold = float(stuff_class_threshold)
    self.overlap_threshold = float(overlap_threshold)
    self.thing_area_limit = int(thing_area_limit)
    self.stuff_area_limit = int(stuff_area_limit)
    self.pixel_confidence_threshold = float(pixel_confidence_threshold)
    self.reorder_class_weight = float(reorder_class_weight)
    self.reorder_mask_weight = float(reorder_mask_weight)
    if len(self.output_size) != 2:
      raise ValueError(f"output_size must be (height, width), got {output_size}.")

  def _class_predictions(self, class_logits):
    """Per-slot class index (into things + stuff), confidence, confident flag."""
    # Softmax over all K + 1 channels, then void is dropped: void competes for
    # probability mass but can never be the prediction. The softmax runs on each
    # slot's logits sorted (descending; equal logits lower class first), so two
    # slots whose logits are the same numbers in other classes get bit-identical
    # confidences: CPU softmax kernels sum a row in an order that depends on
    # where its large entries sit, and would otherwise break such ties by noise
    # (the slot order below, and with it the panoptic ids, would depend on the
    # kernels). The best non-void class is the first sorted entry unless that
    # is void, then the second.
    num_channels = class_logits.shape[-1]
    sorted_logits, sorted_classes = tf.math.top_k(class_logits, k=num_channels, sorted=True)
    sorted_probs = tf.nn.softmax(sorted_logits, axis=-1)
    void_first = tf.equal(sorted_classes[..., 0], num_channels - 1)
    class_pred = tf.where(void_first, sorted_classes[..., 1], sorted_classes[..., 0])
    confidence = tf.where(void_first, sorted_probs[..., 1], sorted_probs[..., 0])
    is_thing = class_pred < len(self.thing_class_ids)
    above_thing = confidence >= self.thing_class_threshold
    above_stuff = confidence >= self.stuff_class_threshold
    confident = tf.where(is_thing, above_thing, above_stuff)
    # An image where no slot passes either threshold gets DeepLab2's empty
    # result, whose instance scores are zero (not the max probability).
    any_detection = tf.reduce_any(tf.logical_or(above_thing, above_stuff), axis=-1)
    return class_pred, confidence, is_thing, confident, any_detection

  def _slot_order(self, mask_logits, confidence):
    """Slot indices sorted by reorder score, descending; ties keep slot order."""
    num_slots = mask_logits.shape[-1]
    probs = tf.nn.softmax(mask_logits, axis=-1)
    shape = tf.shape(probs)
    probs = tf.reshape(probs, [shape[0], shape[1] * shape[2], num_slots])
    detected = tf.cast(probs > self.pixel_confidence_threshold, tf.float32)
    prob_sum = tf.reduce_sum(probs * detected, axis=1)
    count = tf.reduce_sum(detected, axis=1)
    # divide_no_nan without the DivNoNan op: a non-zero count is >= 1.
    mask_score = tf.where(count > 0.0, prob_sum / tf.maximum(count, 1.0),
                          tf.zeros_like(prob_sum))
    score = (tf.pow(confidence, self.reorder_class_weight) *
             tf.pow(mask_score, self.reorder_mask_weight))
    # top_k with k = N is DeepLab2's descending stable argsort: equal scores
    # keep the lower slot index first.
    return tf.math.top_k(score, k=num_slots, sorted=True).indices

  def _paste(self, sorted_masks, confident):
    """Pastes sorted binary masks; returns canvas [B, P] and areas [B, N].

    sorted_masks: bool [B, N, P] in paste order; confident: bool [B, N].
    Canvas values are the paste position + 1 (0 = nothing pasted).
    """
    num_slots = sorted_masks.shape[1]
    batch = tf.shape(sorted_masks)[0]
    num_pixels = tf.shape(sorted_masks)[2]
    canvas = tf.zeros([batch, num_pixels], tf.int32)
    areas = tf.zeros([batch, num_slots], tf.float32)

    def body(i, canvas, areas):
      mask = tf.gather(sorted_masks, i, axis=1)
      # Float sums of 0/1 are exact integers (< 2**24 pixels), as in DeepLab2.
      original = tf.reduce_sum(tf.cast(mask, tf.float32), axis=-1)
      free = tf.logical_and(mask, tf.equal(canvas, 0))
      remaining = tf.reduce_sum(tf.cast(free, tf.float32), axis=-1)
      keep = tf.logical_and(remaining > original * self.overlap_threshold,
                            tf.gather(confident, i, axis=1))
      pasted = tf.logical_and(free, keep[:, tf.newaxis])
      canvas = tf.where(pasted, i + 1, canvas)
      area = tf.where(keep, remaining, tf.zeros_like(remaining))
      areas = areas + area[:, tf.newaxis] * tf.one_hot(i, num_slots, dtype=tf.float32)
      return i + 1, canvas, areas

    _, canvas, areas = tf.while_loop(
        lambda i, *_: i < num_slots, body, (tf.constant(0), canvas, areas),
        maximum_iterations=num_slots)
    return canvas, areas

  def _paste_two_masks(self, probs, first_slot, order, confident):
    """The paste of `_paste` when no pixel is in more than two masks.

    probs: [B, H, W, N] slot probabilities; first_slot: int32 [B, H, W] argmax
    slot; order: [B, N] slot per paste position; confident: bool [B, N] in
    paste order. Returns canvas [B, P] and areas [B, N] equal to `_paste`'s.

    A pixel in masks j < i (paste positions) is free at i's turn exactly when
    j was dropped, so the pixels i loses are the pair counts C[j, i] of kept
    j: the sequential decisions need only slot-level counts, and the pixels
    are read once instead of once per slot.
    """
    num_slots = probs.shape[-1]
    batch = tf.shape(probs)[0]
    detected = tf.cast(probs > self.pixel_confidence_threshold, tf.float32)
    detected = tf.reshape(detected, [-1, num_slots])
    # Per pixel: how many masks, and the sum of their slot indices. Integers
    # <= 2 * (N - 1), exact in float32 (and bfloat16) whatever the order of
    # summation.
    basis = tf.stack([tf.ones([num_slots]), tf.range(num_slots, dtype=tf.float32)], axis=1)
    moments = tf.cast(tf.matmul(detected, basis), tf.int32)
    count = tf.reshape(moments[:, 0], [batch, -1])
    # The argmax slot is among the detected ones whenever any is: a detected
    # slot's probability exceeds every undetected one.
    slot_a = tf.reshape(first_slot, [batch, -1])
    slot_b = tf.reshape(moments[:, 1], [batch, -1]) - slot_a
    # Paste position of every slot (inverse of `order`).
    positions = tf.range(num_slots)
    rank = tf.reduce_sum(
        tf.cast(tf.equal(order[:, :, tf.newaxis], positions), tf.int32)
        * positions[tf.newaxis, :, tf.newaxis], axis=1)
    in_one = count >= 1
    in_two = count >= 2
    pos_a = tf.gather(rank, slot_a, batch_dims=1)
    pos_b = tf.gather(rank, tf.where(in_two, slot_b, slot_a), batch_dims=1)
    early = tf.minimum(pos_a, pos_b)
    late = tf.maximum(pos_a, pos_b)

    # One segment sum for all counts, per image: N mask sizes (a pixel in two
    # masks adds to both), N * N pair counts, and a last bin for pixels that
    # add nothing.
    bins = num_slots + num_slots * num_slots + 1
    unused = bins - 1
    offsets = tf.range(batch)[:, tf.newaxis] * bins
    ids = tf.concat([
        tf.where(in_one, early, unused),
        tf.where(in_two, late, unused),
        tf.where(in_two, num_slots + early * num_slots + late, unused)], axis=1)
    ids = tf.reshape(ids + offsets, [-1])
    counts = tf.math.unsorted_segment_sum(tf.ones_like(ids, tf.float32), ids, batch * bins)
    counts = tf.reshape(counts, [batch, bins])
    original = counts[:, :num_slots]
    pairs = tf.reshape(counts[:, num_slots:unused], [batch, num_slots, num_slots])

    def body(i, keep, areas):
      lost = tf.reduce_sum(keep * pairs[:, :, i], axis=-1)
      original_i = original[:, i]
      remaining = original_i - lost
      kept = tf.logical_and(remaining > original_i * self.overlap_threshold,
                            confident[:, i])
      hot = tf.one_hot(i, num_slots, dtype=tf.float32)
      keep = keep + tf.cast(kept, tf.float32)[:, tf.newaxis] * hot
      areas = areas + tf.where(kept, remaining, 0.0)[:, tf.newaxis] * hot
      return i + 1, keep, areas

    zeros = tf.zeros([batch, num_slots], tf.float32)
    _, keep, areas = tf.while_loop(
        lambda i, *_: i < num_slots, body, (tf.constant(0), zeros, zeros),
        maximum_iterations=num_slots)
    keep = keep > 0.5
    early_pasted = tf.logical_and(in_one, tf.gather(keep, early, batch_dims=1))
    late_pasted = tf.logical_and(in_two, tf.gather(keep, late, batch_dims=1))
    canvas = tf.where(early_pasted, early + 1, tf.where(late_pasted, late + 1, 0))
    return canvas, areas

  def _segment_kept(self, areas, class_pred, is_thing):
    """Area filter per sorted slot: thing by its own area, stuff by class area."""
    same_stuff_class = tf.logical_and(
        tf.equal(class_pred[:, :, tf.newaxis], class_pred[:, tf.newaxis, :]),
        tf.logical_not(is_thing)[:, tf.newaxis, :])
    # All slots of one stuff class form one segment; these sums of integers
    # are exact in float32.
    class_areas = tf.reduce_sum(
        tf.cast(same_stuff_class, tf.float32) * areas[:, tf.newaxis, :], axis=-1)
    # A limit <= 0 keeps every segment, which matches DeepLab2 skipping the
    # filter for such limits.
    thing_kept = areas > float(self.thing_area_limit) - 0.5
    stuff_kept = class_areas > float(self.stuff_area_limit) - 0.5
    return tf.where(is_thing, thing_kept, stuff_kept)

  def call(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    mask_logits = tf.cast(inputs[outputs.PIXEL_SPACE_MASK_LOGITS], tf.float32)
    class_logits = tf.cast(inputs[outputs.TRANSFORMER_CLASS_LOGITS], tf.float32)
    num_slots = mask_logits.shape[-1]
    num_classes = class_logits.shape[-1] - 1
    if num_slots is None or num_classes is None:
      raise ValueError("The slot and class axes must have static sizes.")
    height, width = self.output_size
    batch = tf.shape(mask_logits)[0]
    class_ids = tf.constant(
        self.thing_class_ids + _stuff_class_ids(num_classes, self.thing_class_ids,
                                               self.ignore_label), tf.int32)

    class_pred, confidence, is_thing, confident, any_detection = (
        self._class_predictions(class_logits))
    order = self._slot_order(mask_logits, confidence)

    logits = align_corners_resize.bilinear(mask_logits, [height, width])
    probs = tf.nn.softmax(logits, axis=-1)

    # Semantic map: threshold-free pixel-wise argmax, then the slot's class.
    argmax_slot = tf.argmax(logits, axis=-1, output_type=tf.int32)
    semantic_pred = tf.gather(class_ids, tf.gather(class_pred, argmax_slot, batch_dims=1))

    # A scalar zero, not zeros_like(probs[..., 0]): with a dynamic batch that
    # slice is a strided copy of the whole probability tensor.
    instance_scores = tf.where(any_detection[:, tf.newaxis, tf.newaxis],
                               tf.reduce_max(probs, axis=-1), 0.0)

    sorted_class = tf.gather(class_pred, order, batch_dims=1)
    sorted_confidence = tf.gather(confidence, order, batch_dims=1)
    sorted_is_thing = tf.gather(is_thing, order, batch_dims=1)
    sorted_confident = tf.gather(confident, order, batch_dims=1)

    if self.pixel_confidence_threshold >= TWO_MASK_THRESHOLD:
      canvas, areas = self._paste_two_masks(probs, argmax_slot, order, sorted_confident)
    else:
      # Binary masks as [B * N, H * W] rows so the paste order is a plain gather.
      detected = probs > self.pixel_confidence_threshold
      detected = tf.reshape(tf.transpose(detected, [0, 3, 1, 2]),
                            [batch * num_slots, height * width])
      rows = order + tf.range(batch)[:, tf.newaxis] * num_slots
      sorted_masks = tf.reshape(tf.gather(detected, tf.reshape(rows, [-1])),
                                [batch, num_slots, height * width])
      canvas, areas = self._paste(sorted_masks, sorted_confident)
    kept = self._segment_kept(areas, sorted_class, sorted_is_thing)

    # Everything a pasted pixel carries is a property of its slot: per-slot
    # tables, then one gather per map.
    void_id = self.ignore_label * self.label_divisor
    slot_instance = tf.where(sorted_is_thing, tf.range(1, num_slots + 1)[tf.newaxis], 0)
    slot_panoptic = tf.where(
        kept, tf.gather(class_ids, sorted_class) * self.label_divisor + slot_instance,
        void_id)
    pasted = canvas > 0
    position = tf.maximum(canvas - 1, 0)
    panoptic = tf.where(pasted, tf.gather(slot_panoptic, position, batch_dims=1), void_id)
    semantic_scores = tf.where(pasted, tf.gather(sorted_confidence, position, batch_dims=1),
                               0.0)

    def as_map(x):
      return tf.reshape(x, [batch, height, width])

    return {
        outputs.PANOPTIC_PRED: as_map(panoptic),
        outputs.INSTANCE_PRED: as_map(tf.maximum(canvas, 1)),
        outputs.SEMANTIC_PRED: semantic_pred,
        outputs.INSTANCE_SCORES: instance_scores,
        outputs.SEMANTIC_SCORES: as_map(semantic_scores),
        outputs.PASTED_SLOT_PANOPTIC_IDS: slot_panoptic,
        outputs.PASTED_SLOT_SCORES: sorted_confidence,
    }

  def get_config(self):
    config = super().get_config()
    config.update(
        thing_class_ids=list(self.thing_class_ids),
        label_divisor=self.label_divisor,
        ignore_label=self.ignore_label,
        output_size=list(self.output_size),
        thing_class_threshold=self.thing_class_threshold,
        stuff_class_threshold=self.stuff_class_threshold,
        overlap_threshold=self.overlap_threshold,
        thing_area_limit=self.thing_area_limit,
        stuff_area_limit=self.stuff_area_limit,
        pixel_confidence_threshold=self.pixel_confidence_threshold,
        reorder_class_weight=self.reorder_class_weight,
        reorder_mask_weight=self.reorder_mask_weight)
    return config
