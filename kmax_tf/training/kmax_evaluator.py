"""Panoptic-quality evaluation of kMaX-DeepLab, as an orbit StandardEvaluator.

kMaX-DeepLab: Yu et al., "k-means Mask Transformer", ECCV 2022. PQ: Kirillov et
al., "Panoptic Segmentation", CVPR 2019, computed by the project's streaming
metric (kmax_tf.evaluation.panoptic_quality, panopticapi semantics).

As DeepLab2's evaluator does, each prediction (made at the eval crop) is cut
to the resized image inside the padded crop, resized back to the original
image size (nearest neighbour, corner-aligned) and compared with the original
panoptic label. Results go to TensorBoard (through orbit) and to
`<output_dir>/panoptic_quality-<step>.json` plus `panoptic_quality.json`
(latest).

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
from kmax_tf.data import preprocessing
from kmax_tf.data import target_keys
from kmax_tf.evaluation import pq_stats
from kmax_tf.evaluation.panoptic_quality import PanopticQuality

RESULTS_FILENAME = "panoptic_quality.json"


def resized_size(raw_size, min_resize_value, max_resize_value, resize_factor) -> tf.Tensor:
  """[height, width] the eval pipeline resized an image of `raw_size` to."""
  raw_size = tf.cast(raw_size, tf.int32)
  if not (min_resize_value or max_resize_value):
    return raw_size
  return preprocessing.resize_to_range_size(raw_size[0], raw_size[1], min_resize_value,
                                            max_resize_value, resize_factor)


@tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32),
                              tf.TensorSpec([2], tf.int32), tf.TensorSpec([2], tf.int32)],
             reduce_retracing=True)
def undo_preprocessing(prediction, crop_to, raw_size):
  """Crops the valid region of a padded-crop prediction and resizes it to the raw size."""
  valid = prediction[:crop_to[0], :crop_to[1]]
  resized = tf.compat.v1.image.resize_nearest_neighbor(valid[tf.newaxis, ..., tf.newaxis],
                                                       raw_size, align_corners=True)
  return resized[0, ..., 0]


class KMaXEvaluator(orbit.StandardEvaluator):
  """Runs the model on the eval set and accumulates panoptic quality."""

  def __init__(self,
               model,
               dataset_fn: Callable[[], object],
               descriptor,
               resize_settings: Sequence,
               global_step: tf.Variable,
               output_dir: Optional[str],
               distributed: bool = False):
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
    """
    self._model = model
    self._dataset_fn = dataset_fn
    self._descriptor = descriptor
    self._resize_settings = tuple(resize_settings)
    self._global_step = global_step
    self._output_dir = output_dir
    self._distributed = distributed
    self._strategy = tf.distribute.get_strategy()
    self._metric = None
    self._predict = None
    self._last_results = None
    super().__init__(None, orbit.StandardEvaluatorOptions(use_tf_function=False))

  @property
  def last_results(self) -> Optional[Dict]:
    """The panopticapi-style result dict of the last evaluation."""
    return self._last_results

  def eval_begin(self):
    if self._metric is None:
      # Created outside any strategy scope: a plain local accumulator.
      d = self._descriptor
      self._metric = PanopticQuality(d.num_classes, d.panoptic_label_divisor, d.ignore_label,
                                     d.thing_class_ids)
    self._metric.reset_state()
    # A fresh pass over the whole eval set every time.
    self.eval_dataset = self._dataset_fn()
    return None

  def _predict_fn(self):
    if self._predict is None:
      model = self._model
      strategy = self._strategy

      def forward(images):
        return model(images, training=False,
                     output_keys=(output_keys.PANOPTIC_PRED,))[output_keys.PANOPTIC_PRED]

      if self._distributed:
        @tf.function
        def predict(images):
          results = strategy.run(forward, args=(images,))
          return strategy.experimental_local_results(results)
      else:
        @tf.function(reduce_retracing=True)
        def predict(images):
          return (forward(images),)
      self._predict = predict
    return self._predict

  def eval_step(self, iterator):
    images, targets = next(iterator)
    predictions = self._predict_fn()(images)
    if self._distributed:
      targets = tf.nest.map_structure(self._strategy.experimental_local_results, targets)
      raw = targets[target_keys.PANOPTIC_RAW]
      sizes = targets[target_keys.SIZE_RAW]
    else:
      raw = (targets[target_keys.PANOPTIC_RAW],)
      sizes = (targets[target_keys.SIZE_RAW],)
    return predictions, raw, sizes

  def eval_reduce(self, state=None, step_outputs=None):
    predictions, raws, sizes = step_outputs
    for prediction, raw, size in zip(predictions, raws, sizes):
      for i in range(int(prediction.shape[0])):
        raw_size = tf.cast(size[i], tf.int32)
        crop_to = resized_size(raw_size, *self._resize_settings)
        predicted = undo_preprocessing(tf.cast(prediction[i], tf.int32), crop_to, raw_size)
        groundtruth = raw[i][:raw_size[0], :raw_size[1]]
        self._metric.update_state(groundtruth, predicted)
    return state

  def eval_end(self, state=None):
    d = self._descriptor
    evaluated = [c for c in range(d.num_classes) if c != d.ignore_label]
    results = self._metric.summary(evaluated)
    self._last_results = results
    step = int(self._global_step.numpy())
    logs = {}
    for split, suffix in (("All", ""), ("Things", "_things"), ("Stuff", "_stuff")):
      for key in ("pq", "sq", "rq"):
        logs[f"panoptic_quality/{key}{suffix}"] = np.float32(results[split][key])
    if self._output_dir:
      self._write_json(results, step)
    return logs

  def _write_json(self, results, step):
    d = self._descriptor
    ready = pq_stats.to_json_ready(results)
    ready["per_class"] = {d.class_names[c]: row for c, row in ready["per_class"].items()}
    payload = {"step": step, "dataset": d.name, "pq": ready["All"]["pq"], **ready}
    tf.io.gfile.makedirs(self._output_dir)
    text = json.dumps(payload, indent=2, sort_keys=True)
    for name in (f"panoptic_quality-{step}.json", RESULTS_FILENAME):
      path = os.path.join(self._output_dir, name)
      tmp = path + ".tmp"
      with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(text)
      tf.io.gfile.rename(tmp, path, overwrite=True)
