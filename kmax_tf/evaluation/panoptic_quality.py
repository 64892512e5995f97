"""Streaming panoptic quality (PQ / SQ / RQ; Kirillov et al., "Panoptic Segmentation", CVPR 2019).

A tf_keras metric fed batches of ground-truth and predicted panoptic maps
(class * label_divisor + instance). It accumulates, per class, the summed IoU of matched
segments and the TP / FP / FN counts in float64 variables, so memory is bounded by the number
of classes, and it runs eagerly, from numpy, or inside a tf.function.

The matching follows the official COCO tool (panopticapi `pq_compute`), not DeepLab2's metric
(whose FAQ notes that its numbers differ slightly from the official ones):
  - pixels whose class is `ignored_label` are void, in the ground truth and in the prediction;
  - a ground-truth segment and a predicted segment of the same class match when IoU > 0.5,
    the union leaving out the predicted pixels that lie on ground-truth void;
  - ground-truth pixels of a thing class with instance id 0 are that class's crowd region
    (DeepLab2's label convention for COCO / Cityscapes crowds): never matched, no false
    negative, and an unmatched prediction lying more than half on void plus the crowd region
    of its own class is no false positive.
Fed the maps of COCO-format files, it gives the file-based evaluator's numbers, except when an
image has several crowd segments of one category: maps cannot tell them apart, so they count as
one region, while panopticapi keeps only the last one listed.
"""
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from kmax_tf.evaluation import pq_stats


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class PanopticQuality(tf_keras.metrics.Metric):
  """Streaming PQ / SQ / RQ with COCO (panopticapi) semantics.

  `result()` gives scalar tensors pq, sq, rq for all classes and with suffixes _things / _stuff;
  `summary()` gives the panopticapi result dict (All / Things / Stuff and per class, keyed by
  class id).

  Args:
    num_classes: semantic classes; class ids must lie in [0, num_classes) or
      equal ignored_label.
    label_divisor: panoptic id = class * label_divisor + instance.
    ignored_label: void class id (void pixels, any instance id).
    thing_class_ids: class ids with instances (crowd handling, things/stuff
      split).
    name: metric name.
    **kwargs: tf_keras.metrics.Metric arguments (the dtype is always float64).
  """

  def __init__(self, num_classes: int, label_divisor: int, ignored_label: int,
               thing_class_ids: Sequence[int] = (), name: str = "panoptic_quality", **kwargs):
    kwargs.pop("dtype", None)
    super().__init__(name=name, dtype=tf.float64, **kwargs)
    self.num_classes = int(num_classes)
    self.label_divisor = int(label_divisor)
    self.ignored_label = int(ignored_label)
    self.thing_class_ids = tuple(int(c) for c in thing_class_ids)
    if any(not 0 <= c < self.num_classes for c in self.thing_class_ids):
      raise ValueError(f"thing_class_ids {self.thing_class_ids} must lie in [0, {num_classes}).")
    # Panoptic ids are < offset, so (image, gt id, pred id) packs into one int64 key.
    self._offset = max(self.num_classes, self.ignored_label + 1) * self.label_divisor
    is_thing = np.zeros(self.num_classes, bool)
    is_thing[list(self.thing_class_ids)] = True
    self._is_thing = is_thing
    self.total_iou = self.add_weight("total_iou", shape=(self.num_classes,), dtype=tf.float64,
                                     initializer="zeros")
    self.total_tp = self.add_weight("total_tp", shape=(self.num_classes,), dtype=tf.float64,
                                    initializer="zeros")
    self.total_fp = self.add_weight("total_fp", shape=(self.num_classes,), dtype=tf.float64,
                                    initializer="zeros")
    self.total_fn = self.add_weight("total_fn", shape=(self.num_classes,), dtype=tf.float64,
                                    initializer="zeros")

  def update_state(self, y_true, y_pred, sample_weight=None):
    """Adds a [H, W] pair or a [B, H, W] batch of panoptic maps.

    Args:
      y_true: integer ground-truth panoptic ids (class * label_divisor +
        instance; instance 0 of a thing class is crowd), [H, W] or [B, H, W].
      y_pred: integer predicted panoptic ids, the same shape.
      sample_weight: must be None (not supported).
    """
    if sample_weight is not None:
      raise ValueError("PanopticQuality does not support sample_weight.")
    iou, tp, fp, fn = self._batch_sums(y_true, y_pred)
    self.total_iou.assign_add(iou)
    self.total_tp.assign_add(tp)
    self.total_fp.assign_add(fp)
    self.total_fn.assign_add(fn)

  def _batch_sums(self, y_true, y_pred):
    div = tf.constant(self.label_divisor, tf.int64)
    offset = tf.constant(self._offset, tf.int64)
    ignored = tf.constant(self.ignored_label, tf.int64)
    num_classes = self.num_classes
    gt = tf.cast(tf.convert_to_tensor(y_true), tf.int64)
    pred = tf.cast(tf.convert_to_tensor(y_pred), tf.int64)
    if gt.shape.rank == 2:
      gt, pred = gt[tf.newaxis], pred[tf.newaxis]
    batch = tf.shape(gt, out_type=tf.int64)[0]
    gt = tf.reshape(gt, tf.stack([batch, -1]))
    pred = tf.reshape(pred, tf.stack([batch, -1]))
    checks = []
    for ids, side in ((gt, "ground-truth"), (pred, "predicted")):
      classes = ids // div
      checks.append(tf.debugging.assert_non_negative(
          ids, message=f"PanopticQuality: negative {side} panoptic id."))
      checks.append(tf.debugging.assert_equal(
          tf.reduce_all((classes < num_classes) | (classes == ignored)), True,
          message=f"PanopticQuality: {side} class id outside [0, num_classes) and not ignored."))
    with tf.control_dependencies(checks):
      # Every void pixel gets the same id, whatever its instance id.
      void_id = ignored * div
      gt = tf.where(gt // div == ignored, void_id, gt)
      pred = tf.where(pred // div == ignored, void_id, pred)
      image = tf.range(batch, dtype=tf.int64)[:, tf.newaxis]
      pair_key = tf.reshape((image * offset + gt) * offset + pred, [-1])

    pairs, _, pair_area = tf.unique_with_counts(pair_key, out_idx=tf.int64)
    pair_area = tf.cast(pair_area, tf.float64)
    gt_key = pairs // offset
    pred_key = gt_key // offset * offset + pairs % offset
    gt_keys, gt_of_pair = tf.unique(gt_key, out_idx=tf.int64)
    pred_keys, pred_of_pair = tf.unique(pred_key, out_idx=tf.int64)
    num_gt = tf.size(gt_keys, out_type=tf.int64)
    num_pred = tf.size(pred_keys, out_type=tf.int64)
    gt_area = tf.math.unsorted_segment_sum(pair_area, gt_of_pair, num_gt)
    pred_area = tf.math.unsorted_segment_sum(pair_area, pred_of_pair, num_pred)

    gt_class = gt_keys % offset // div
    pred_class = pred_keys % offset // div
    gt_void = tf.equal(gt_class, ignored)
    pred_void = tf.equal(pred_class, ignored)
    gt_class = tf.where(gt_void, tf.zeros_like(gt_class), gt_class)
    pred_class = tf.where(pred_void, tf.zeros_like(pred_class), pred_class)
    gt_crowd = (~gt_void & tf.gather(tf.constant(self._is_thing), gt_class)
                & tf.equal(gt_keys % offset % div, 0))

    pair_gt_class = tf.gather(gt_class, gt_of_pair)
    pair_pred_class = tf.gather(pred_class, pred_of_pair)
    pair_gt_void = tf.gather(gt_void, gt_of_pair)
    pair_gt_crowd = tf.gather(gt_crowd, gt_of_pair)
    same_class = tf.equal(pair_gt_class, pair_pred_class)
    on_void = tf.math.unsorted_segment_sum(
        tf.where(pair_gt_void, pair_area, 0.0), pred_of_pair, num_pred)
    on_own_crowd = tf.math.unsorted_segment_sum(
        tf.where(pair_gt_crowd & same_class, pair_area, 0.0), pred_of_pair, num_pred)

    candidate = (same_class & ~pair_gt_void & ~tf.gather(pred_void, pred_of_pair)
                 & ~pair_gt_crowd)
    union = (tf.gather(gt_area, gt_of_pair) + tf.gather(pred_area, pred_of_pair) - pair_area
             - tf.gather(on_void, pred_of_pair))
    iou = pair_area / union
    match = candidate & (iou > 0.5)
    matched = tf.cast(match, tf.float64)
    iou_sum = tf.math.unsorted_segment_sum(iou * matched, pair_gt_class, num_classes)
    tp = tf.math.unsorted_segment_sum(matched, pair_gt_class, num_classes)
    gt_matched = tf.math.unsorted_segment_max(matched, gt_of_pair, num_gt) > 0
    pred_matched = tf.math.unsorted_segment_max(matched, pred_of_pair, num_pred) > 0

    missed = tf.cast(~gt_void & ~gt_crowd & ~gt_matched, tf.float64)
    fn = tf.math.unsorted_segment_sum(missed, gt_class, num_classes)
    mostly_ignored = (on_void + on_own_crowd) / pred_area > 0.5
    spurious = tf.cast(~pred_void & ~pred_matched & ~mostly_ignored, tf.float64)
    fp = tf.math.unsorted_segment_sum(spurious, pred_class, num_classes)
    return iou_sum, tp, fp, fn

  def result(self):
    evaluated = np.ones(self.num_classes, bool)
    if 0 <= self.ignored_label < self.num_classes:
      evaluated[self.ignored_label] = False
    out = {}
    for suffix, keep in (("", evaluated), ("_things", evaluated & self._is_thing),
                         ("_stuff", evaluated & ~self._is_thing)):
      tp, fp, fn, iou = (tf.boolean_mask(v, keep) for v in
                         (self.total_tp, self.total_fp, self.total_fn, self.total_iou))
      present = tf.cast(tp + fp + fn > 0, tf.float64)
      denominator = tp + 0.5 * fp + 0.5 * fn
      n = tf.reduce_sum(present)
      out["pq" + suffix] = tf.math.divide_no_nan(
          tf.reduce_sum(tf.math.divide_no_nan(iou, denominator)), n)
      out["sq" + suffix] = tf.math.divide_no_nan(
          tf.reduce_sum(tf.math.divide_no_nan(iou, tp)), n)
      out["rq" + suffix] = tf.math.divide_no_nan(
          tf.reduce_sum(tf.math.divide_no_nan(tp, denominator)), n)
    return out

  def summary(self, class_ids: Optional[Sequence[int]] = None) -> dict:
    """The panopticapi result dict, per class keyed by class id (eager only).

    Args:
      class_ids: the classes to report, default all but `ignored_label`.
    """
    if class_ids is None:
      class_ids = [c for c in range(self.num_classes) if c != self.ignored_label]
    class_ids = list(class_ids)
    pick = lambda v: v.numpy()[class_ids]
    return pq_stats.summarize(class_ids, self._is_thing[class_ids], pick(self.total_iou),
                              pick(self.total_tp), pick(self.total_fp), pick(self.total_fn))

  def reset_state(self):
    for v in self.variables:
      v.assign(tf.zeros_like(v))

  def get_config(self):
    config = super().get_config()
    config.pop("dtype", None)
    config.update(num_classes=self.num_classes, label_divisor=self.label_divisor,
                  ignored_label=self.ignored_label, thing_class_ids=list(self.thing_class_ids))
    return config
