"""Streaming mean IoU from a confusion matrix (the semantic-segmentation metric reported with
kMaX-DeepLab, and in the Cityscapes / ADE20K benchmarks).

IoU_c = TP_c / (TP_c + FP_c + FN_c) over all pixels seen; mIoU averages it over the classes
whose denominator is non-zero. Ground-truth pixels labelled `ignored_label` are left out. A
prediction of `ignored_label` (or of any id outside [0, num_classes)) on a labelled pixel is a
miss for the true class and a false positive for no class.
"""
import numpy as np
import tensorflow as tf
import tf_keras


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class MeanIoU(tf_keras.metrics.Metric):
  """Confusion-matrix mIoU; `result()` is the scalar mIoU, `per_class_iou()` the vector.

  Args:
    num_classes: semantic classes; ground-truth ids must lie in [0, num_classes)
      or equal ignored_label.
    ignored_label: void class id: ground-truth pixels with it are skipped, and
      when it lies in [0, num_classes) its class is left out of the mean.
    name: metric name.
    **kwargs: tf_keras.metrics.Metric arguments (the dtype is always float64).
  """

  def __init__(self, num_classes: int, ignored_label: int, name: str = "mean_iou", **kwargs):
    kwargs.pop("dtype", None)
    super().__init__(name=name, dtype=tf.float64, **kwargs)
    self.num_classes = int(num_classes)
    self.ignored_label = int(ignored_label)
    # Rows: true class. Columns: predicted class, plus a last column for "no class".
    self.confusion = self.add_weight(
        "confusion", shape=(self.num_classes, self.num_classes + 1), dtype=tf.int64,
        initializer="zeros")

  def update_state(self, y_true, y_pred, sample_weight=None):
    """Adds the pixels of one or more semantic maps.

    Args:
      y_true: integer ground-truth class ids, any shape (e.g. [B, H, W]).
      y_pred: integer predicted class ids, the same shape.
      sample_weight: must be None (not supported).
    """
    if sample_weight is not None:
      raise ValueError("MeanIoU does not support sample_weight.")
    n = self.num_classes
    gt = tf.reshape(tf.cast(y_true, tf.int64), [-1])
    pred = tf.reshape(tf.cast(y_pred, tf.int64), [-1])
    labelled = tf.not_equal(gt, self.ignored_label)
    gt = tf.boolean_mask(gt, labelled)
    pred = tf.boolean_mask(pred, labelled)
    check = tf.debugging.assert_equal(
        tf.reduce_all((gt >= 0) & (gt < n)), True,
        message="MeanIoU: ground-truth label outside [0, num_classes) and not ignored.")
    with tf.control_dependencies([check]):
      valid_pred = (pred >= 0) & (pred < n) & tf.not_equal(pred, self.ignored_label)
      column = tf.where(valid_pred, pred, tf.constant(n, tf.int64))
      cell = gt * (n + 1) + column
    counts = tf.math.unsorted_segment_sum(tf.ones_like(cell), cell, n * (n + 1))
    self.confusion.assign_add(tf.reshape(counts, [n, n + 1]))

  def _iou(self):
    confusion = tf.cast(self.confusion, tf.float64)
    true_positive = tf.linalg.diag_part(confusion[:, :-1])
    denominator = (tf.reduce_sum(confusion, axis=1) + tf.reduce_sum(confusion[:, :-1], axis=0)
                   - true_positive)
    evaluated = np.ones(self.num_classes, bool)
    if 0 <= self.ignored_label < self.num_classes:
      evaluated[self.ignored_label] = False
    present = (denominator > 0) & tf.constant(evaluated)
    return tf.math.divide_no_nan(true_positive, denominator), present

  def result(self):
    iou, present = self._iou()
    return tf.math.divide_no_nan(tf.reduce_sum(tf.where(present, iou, 0.0)),
                                 tf.reduce_sum(tf.cast(present, tf.float64)))

  def per_class_iou(self) -> np.ndarray:
    """IoU per class (eager only); NaN for the ignored class and for classes never seen."""
    iou, present = self._iou()
    return np.where(present.numpy(), iou.numpy(), np.nan)

  def reset_state(self):
    self.confusion.assign(tf.zeros_like(self.confusion))

  def get_config(self):
    config = super().get_config()
    config.pop("dtype", None)
    config.update(num_classes=self.num_classes, ignored_label=self.ignored_label)
    return config
