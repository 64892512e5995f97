"""Panoptic-quality evaluation of kMaX-DeepLab, as an orbit StandardEvaluator.

PQ: Kirillov et
al., "Panoptic Segmentation", CVPR 2019, computed by the project's streaming
metric (kmax_tf.evaluation.panoptic_quality, panopticapi semantics).

As DeepLab2's evaluator does, each prediction (made at the eval crop) is cut
to the resized image inside the padded crop, resized back to the original
image size (nearest neighbour, corner-aligned) and compared with the original
panoptic label. As DeepLab2's evaluator does for kMaX, each evaluation computes
PQ, the semantic mIoU (of panoptic_pred // label_divisor) and the mask AP of
the thing instances (scored by the post-processor's instance scores, through
pycocotools). Results go to TensorBoard (through orbit) and, per metric, to
`<output_dir>/<metric>-<step>.json` plus `<metric>.json` (latest), metric one
of panoptic_quality, mean_iou, mask_ap. With a `prediction_dir`, every
prediction is also written in the dataset's result format (COCO panoptic PNGs
+ JSON; Cityscapes semantic / panoptic / instance files) under
`<prediction_dir>/<step>/`, ready for the official tools.

Evaluation runs on each worker's first device over the whole eval set (what
DeepLab2 supports: one device); on TPU the batches are spread over the cores.
Under multi-worker training every worker evaluates and the chief writes.
"""
import json
import os
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import orbit
import tensorflow as tf

from kmax_tf import outputs as output_keys
from kmax_tf.data import datasets
from kmax_tf.data import eval_geometry
from kmax_tf.data import target_keys
from kmax_tf.evaluation import cityscapes_result_writer
from kmax_tf.evaluation import coco_mask_ap
from kmax_tf.evaluation import coco_panoptic_writer
from kmax_tf.evaluation import pq_stats
from kmax_tf.evaluation.mean_iou import MeanIoU
from kmax_tf.evaluation.panoptic_quality import PanopticQuality
from kmax_tf.post_processing import segment_scores as scoring

RESULTS_FILENAME = "panoptic_quality.json"
MEAN_IOU_FILENAME = "mean_iou.json"
MASK_AP_FILENAME = "mask_ap.json"
# DeepLab2 logs AP, AP50 and AP75; detailed_ap_metrics adds the size and recall figures.
_SHORT_AP_STATS = ("AP", "AP50", "AP75")


def resized_size(raw_size, min_resize_value, max_resize_value, resize_factor) -> tf.Tensor:
  """[height, width] the eval pipeline resized an image of `raw_size` to.

  Args:
    raw_size: int32 [2], the original image's (height, width) in pixels.
    min_resize_value: eval_dataset_options.min_resize_value (see
      preprocessing.resize_spec), or None.
    max_resize_value: eval_dataset_options.max_resize_value, or None.
    resize_factor: eval_dataset_options.resize_factor, or None.

  Returns:
    int32 [2].
  """
  return eval_geometry.fitted_size(raw_size, min_resize_value, max_resize_value,
                                   resize_factor)


@tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32),
                              tf.TensorSpec([2], tf.int32), tf.TensorSpec([2], tf.int32)],
             reduce_retracing=True)
def undo_preprocessing(prediction, crop_to, raw_size):
  """Crops the valid region of a padded-crop prediction and resizes it to the raw size.

  Args:
    prediction: int32 [crop_h, crop_w] panoptic ids at the eval crop.
    crop_to: int32 [2], (height, width) of the resized image inside the crop.
    raw_size: int32 [2], the original image's (height, width).

  Returns:
    int32 [raw_size[0], raw_size[1]], nearest-neighbour resized.
  """
  return eval_geometry.crop_and_resize_nearest(prediction[tf.newaxis], crop_to, raw_size)[0]


class KMaXEvaluator(orbit.StandardEvaluator):
  """Runs the model on the eval set and accumulates panoptic quality."""

  def __init__(self,
               model,
               dataset_fn: Callable[[], object],
               descriptor,
               resize_settings: Sequence,
               global_step: tf.Variable,
               output_dir: Optional[str],
               distributed: bool = False,
               prediction_dir: Optional[str] = None,
               detailed_ap_metrics: bool = False):
    """Creates the evaluator.

    Args:
      model: KMaXDeepLab whose post-processor outputs panoptic_pred at the eval crop.
      dataset_fn: () -> eval dataset of (image, targets) batches with size_raw and
        panoptic_raw (distributed when `distributed`).
      descriptor: DatasetDescriptor of the eval labels.
      resize_settings: (min_resize_value, max_resize_value, resize_factor) of the
        eval pipeline.
      global_step: the step recorded with the results.
      output_dir: where the JSON results go (None: not written, e.g. on
        non-chief workers).
      distributed: run the model through strategy.run over the replicas (TPU);
        otherwise on the first local device.
      prediction_dir: where each evaluation writes its predictions in the
        dataset's result format (None: not written).
      detailed_ap_metrics: log all 12 COCOeval figures, not only AP/AP50/AP75.
    """
    self._model = model
    self._dataset_fn = dataset_fn
    self._descriptor = descriptor
    self._resize_settings = tuple(resize_settings)
    self._global_step = global_step
    self._output_dir = output_dir
    self._distributed = distributed
    self._strategy = tf.distribute.get_strategy()
    self._prediction_dir = prediction_dir
    self._detailed_ap_metrics = bool(detailed_ap_metrics)
    self._metric = None
    self._miou = None
    self._mask_ap = None
    self._writer = None
    self._image_number = 0
    self._predict = None
    self._last_results = None
    super().__init__(None, orbit.StandardEvaluatorOptions(use_tf_function=False))

  @property
  def last_results(self) -> Optional[Dict]:
    """The panopticapi-style result dict of the last evaluation."""
    return self._last_results

  def eval_begin(self):
    d = self._descriptor
    if self._metric is None:
      # Created outside any strategy scope: plain local accumulators.
      self._metric = PanopticQuality(d.num_classes, d.panoptic_label_divisor, d.ignore_label,
                                     d.thing_class_ids)
      self._miou = MeanIoU(d.num_classes, d.ignore_label)
      self._mask_ap = coco_mask_ap.CocoMaskAP()
    self._metric.reset_state()
    self._miou.reset_state()
    self._mask_ap.reset_state()
    self._image_number = 0
    if self._prediction_dir:
      self._writer = prediction_writer(
          d, os.path.join(self._prediction_dir, str(int(self._global_step.numpy()))))
    # A fresh pass over the whole eval set every time.
    self.eval_dataset = self._dataset_fn()
    return None

  def _predict_fn(self):
    if self._predict is None:
      model = self._model
      strategy = self._strategy

      def forward(images):
        outputs = model(images, training=False,
                        output_keys=(output_keys.PANOPTIC_PRED, output_keys.INSTANCE_SCORES))
        return outputs[output_keys.PANOPTIC_PRED], outputs[output_keys.INSTANCE_SCORES]

      if self._distributed:
        @tf.function
        def predict(images):
          panoptic, scores = strategy.run(forward, args=(images,))
          return tuple(zip(strategy.experimental_local_results(panoptic),
                           strategy.experimental_local_results(scores)))
      else:
        @tf.function(reduce_retracing=True)
        def predict(images):
          return (forward(images),)
      self._predict = predict
    return self._predict

  def eval_step(self, iterator):
    """Predicts one eval batch.

    Args:
      iterator: iterator over (images float32 [B, crop_h, crop_w, 3] in 0..255,
        targets dict with panoptic_raw, size_raw and image_name) batches.

    Returns:
      (predictions, raw, sizes, names), each a tuple with one entry per local
      replica: predictions (panoptic_pred int32 [B, crop_h, crop_w],
      instance_scores float32 [B, crop_h, crop_w]); raw the padded original
      labels [B, H_max, W_max]; sizes int [B, 2]; names string [B].
    """
    images, targets = next(iterator)
    predictions = self._predict_fn()(images)
    if self._distributed:
      targets = tf.nest.map_structure(self._strategy.experimental_local_results, targets)
      raw = targets[target_keys.PANOPTIC_RAW]
      sizes = targets[target_keys.SIZE_RAW]
      names = targets[target_keys.IMAGE_NAME]
    else:
      raw = (targets[target_keys.PANOPTIC_RAW],)
      sizes = (targets[target_keys.SIZE_RAW],)
      names = (targets[target_keys.IMAGE_NAME],)
    return predictions, raw, sizes, names

  def eval_reduce(self, state=None, step_outputs=None):
    """Adds one eval_step's images to the PQ, mIoU and mask AP accumulators.

    Args:
      state: unused; returned as is.
      step_outputs: the tuple eval_step returned.
    """
    predictions, raws, sizes, names = step_outputs
    d = self._descriptor
    for (panoptic, scores), raw, size, name in zip(predictions, raws, sizes, names):
      for i in range(int(panoptic.shape[0])):
        raw_size = tf.cast(size[i], tf.int32)
        crop_to = resized_size(raw_size, *self._resize_settings)
        predicted = undo_preprocessing(tf.cast(panoptic[i], tf.int32), crop_to,
                                       raw_size).numpy()
        groundtruth = raw[i][:raw_size[0], :raw_size[1]].numpy()
        self._metric.update_state(groundtruth, predicted)
        self._miou.update_state(groundtruth // d.panoptic_label_divisor,
                                predicted // d.panoptic_label_divisor)
        segment_scores = scoring.segment_scores(panoptic[i].numpy(), scores[i].numpy())
        self._add_instances(predicted, groundtruth, segment_scores)
        if self._writer is not None:
          self._write_prediction(_image_name(name[i]), predicted, segment_scores)
    return state

  def _add_instances(self, predicted, groundtruth, segment_scores):
    d = self._descriptor
    image_id = self._image_number
    self._image_number += 1
    _, masks, classes, crowd = coco_mask_ap.instances_from_panoptic(
        groundtruth, d.panoptic_label_divisor, d.thing_class_ids, d.ignore_label)
    # Added even without instances: COCOeval counts false positives on such images.
    self._mask_ap.add_groundtruth(image_id, masks, classes, crowd)
    ids, masks, classes, crowd = coco_mask_ap.instances_from_panoptic(
        predicted, d.panoptic_label_divisor, d.thing_class_ids, d.ignore_label)
    keep = ~crowd
    self._mask_ap.add_predictions(image_id, masks[keep],
                                  [segment_scores.get(int(i), 0.0) for i in ids[keep]],
                                  classes[keep])

  def _write_prediction(self, name, predicted, segment_scores):
    d = self._descriptor
    if isinstance(self._writer, cityscapes_result_writer.CityscapesResultWriter):
      things = {int(i): s for i, s in segment_scores.items()
                if d.is_thing(int(i) // d.panoptic_label_divisor)}
      self._writer.add(name, predicted, instance_scores=things)
    else:
      self._writer.add(name, predicted, file_name=f"{name}.png")

  def eval_end(self, state=None):
    """Computes the metrics, writes the JSON files and returns the logs.

    Args:
      state: unused.

    Returns:
      metric name ("panoptic_quality/pq", "mean_iou/miou", "mask_ap/AP", ...)
      -> float32 value, PQ and mIoU as fractions in 0..1.
    """
    d = self._descriptor
    evaluated = [c for c in range(d.num_classes) if c != d.ignore_label]
    results = self._metric.summary(evaluated)
    self._last_results = results
    step = int(self._global_step.numpy())
    logs = {}
    for split, suffix in (("All", ""), ("Things", "_things"), ("Stuff", "_stuff")):
      for key in ("pq", "sq", "rq"):
        logs[f"panoptic_quality/{key}{suffix}"] = np.float32(results[split][key])
    miou = float(self._miou.result().numpy())
    logs["mean_iou/miou"] = np.float32(miou)
    ap = self._mask_ap.result()
    for key in (coco_mask_ap.STAT_NAMES if self._detailed_ap_metrics else _SHORT_AP_STATS):
      logs[f"mask_ap/{key}"] = np.float32(ap[key])
    if self._writer is not None:
      self._writer.close()
      self._writer = None
    if self._output_dir:
      self._write_json(results, step)
      per_class = self._miou.per_class_iou()
      self._write_results(MEAN_IOU_FILENAME, step, {
          "miou": miou, "per_class": {d.class_names[c]: float(per_class[c]) for c in evaluated}})
      self._write_results(MASK_AP_FILENAME, step, dict(ap))
    return logs

  def _write_json(self, results, step):
    d = self._descriptor
    ready = pq_stats.to_json_ready(results)
    ready["per_class"] = {d.class_names[c]: row for c, row in ready["per_class"].items()}
    self._write_results(RESULTS_FILENAME, step, {"pq": ready["All"]["pq"], **ready})

  def _write_results(self, filename, step, payload):
    """Writes `<stem>-<step>.json` and `filename` (latest), each through a temporary name."""
    payload = {"step": step, "dataset": self._descriptor.name, **payload}
    tf.io.gfile.makedirs(self._output_dir)
    text = json.dumps(payload, indent=2, sort_keys=True)
    stem = os.path.splitext(filename)[0]
    for name in (f"{stem}-{step}.json", filename):
      path = os.path.join(self._output_dir, name)
      tmp = path + ".tmp"
      with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(text)
      tf.io.gfile.rename(tmp, path, overwrite=True)


def prediction_writer(descriptor, output_dir: str):
  """The writer of the dataset's result format: Cityscapes' files, else COCO panoptic.

  Args:
    descriptor: DatasetDescriptor of the predictions.
    output_dir: root folder of the written results.
  """
  if descriptor.name == datasets.CITYSCAPES_PANOPTIC:
    return cityscapes_result_writer.CityscapesResultWriter(
        output_dir, descriptor.panoptic_label_divisor, descriptor.ignore_label)
  return coco_panoptic_writer.for_descriptor(descriptor, os.path.join(output_dir, "panoptic.json"),
                                             output_folder=os.path.join(output_dir, "panoptic"))


def _image_name(name) -> str:
  name = name.numpy() if hasattr(name, "numpy") else name
  return name.decode("utf-8") if isinstance(name, bytes) else str(name)
