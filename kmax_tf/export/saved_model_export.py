"""Exports kMaX-DeepLab as a standalone SavedModel.

The SavedModel (TF Serving layout `<output_dir>`, put it under a numbered
version folder for the model server) holds the three signatures of
KMaXServingModule and, in `assets/`, what a client needs to read the maps:
`kmax_metadata.json` (class names, thing ids, label divisor, colours, resize
settings, output contract) and `labels.txt` (one class name per training id).
When tensorflow-serving-api is installed it also writes
`assets.extra/tf_serving_warmup_requests`: TF Serving replays these requests
while loading, so the one-off graph optimization of each signature happens
before the first user request instead of during it.
"""
import json
import os
import tempfile
from typing import Optional, Sequence

import tensorflow as tf

import kmax_tf
from kmax_tf import model_builder
from kmax_tf.checkpoints import checkpoint_io
from kmax_tf.config import kmax_settings
from kmax_tf.data import datasets
from kmax_tf.data import descriptor_json
from kmax_tf.export import segment_table
from kmax_tf.export import serving_module

METADATA_FILE = "kmax_metadata.json"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
LABELS_FILE = "labels.txt"
DEFAULT_MAX_INPUT_SIZE = 8192


def register_dataset(config, descriptor_file: Optional[str] = None):
  """Makes the config's dataset known, as training does for a custom dataset.

  Built-in datasets are registered already. A custom one is described by the
  `dataset_descriptor.json` its converter wrote beside the records: given
  explicitly, or found next to the config's eval/train file patterns.

  Args:
    config: ExperimentOptions.
    descriptor_file: path of a dataset_descriptor.json, or None to search
      beside the config's records.
  """
  name = kmax_settings.resolve_kmax_settings(config).dataset_name
  if descriptor_file:
    descriptor = descriptor_json.read_descriptor(descriptor_file)
    if descriptor.name != name:
      raise ValueError(f"{descriptor_file} describes dataset {descriptor.name!r}, "
                       f"the config uses {name!r}")
    if name not in datasets.dataset_names():
      datasets.register_dataset(descriptor)
    return
  if name in datasets.dataset_names():
    return
  for options in (config.eval_dataset_options, config.train_dataset_options):
    for pattern in list(options.file_pattern):
      for directory in sorted({os.path.dirname(f) for f in tf.io.gfile.glob(pattern)}):
        path = os.path.join(directory, descriptor_json.DESCRIPTOR_FILENAME)
        if tf.io.gfile.exists(path):
          return register_dataset(config, path)
  raise ValueError(
      f"Unknown dataset {name!r}: pass --dataset_descriptor=<records dir>/"
      f"{descriptor_json.DESCRIPTOR_FILENAME} (written by the converter), or run from the "
      "directory the config's file_pattern is relative to.")


def build_serving_module(config, *, input_size: Optional[Sequence[int]] = None,
                         max_input_size: int = DEFAULT_MAX_INPUT_SIZE,
                         checkpoint: Optional[str] = None, model=None):
  """Builds the inference model for `config` (or takes `model`), loads `checkpoint`.

  Args:
    config: ExperimentOptions; the model runs at its eval crop size.
    input_size: (height, width) in pixels that serving_default and
      serve_logits accept; None accepts any size.
    max_input_size: largest accepted image side in pixels.
    checkpoint: checkpoint prefix to load, or None (e.g. when `model` is
      already loaded).
    model: a built KMaXDeepLab for `config`, or None to build one.

  Returns:
    serving_module.KMaXServingModule.
  """
  crop = model_builder.eval_crop_size(config)
  register_dataset(config)
  if model is None:
    model = kmax_tf.build_model(config, input_size=crop)
  if checkpoint:
    checkpoint_io.load_checkpoint(model, checkpoint)
  options = config.eval_dataset_options
  return serving_module.KMaXServingModule(
      model, crop_size=crop, min_resize_value=list(options.min_resize_value),
      max_resize_value=list(options.max_resize_value), resize_factor=options.resize_factor,
      max_input_size=max_input_size, input_size=input_size)


def metadata(config, module) -> dict:
  """The kmax_metadata.json contents: label space, geometry and signatures.

  Args:
    config: ExperimentOptions (gives the dataset).
    module: the KMaXServingModule being exported.
  """
  settings = kmax_settings.resolve_kmax_settings(config)
  descriptor = datasets.get_dataset_descriptor(settings.dataset_name)
  return {
      "format": "kmax_tf.saved_model/1",
      "kmax_tf_version": kmax_tf.__version__,
      "dataset": descriptor.name,
      "num_classes": descriptor.num_classes,
      "class_names": list(descriptor.class_names),
      "class_colors": [list(c) for c in descriptor.class_colors],
      "thing_class_ids": list(descriptor.thing_class_ids),
      "stuff_class_ids": list(descriptor.stuff_class_ids),
      "train_id_to_eval_id": list(descriptor.train_id_to_eval_id),
      "label_divisor": descriptor.panoptic_label_divisor,
      "ignore_label": descriptor.ignore_label,
      "void_panoptic_id": descriptor.ignore_label * descriptor.panoptic_label_divisor,
      "num_mask_slots": module.num_slots,
      "network_scope": module.network_scope,
      "crop_size": list(module.crop_size),
      "min_resize_value": list(module.min_resize_value or ()),
      "max_resize_value": list(module.max_resize_value),
      "resize_factor": module.resize_factor or 0,
      "input_size": list(module.input_size) if module.input_size else None,
      "max_input_size": module.max_input_size,
      "batch_pad_value": serving_module.PAD_VALUE,
      "map_outputs": list(serving_module.MAP_KEYS),
      "segment_outputs": list(segment_table.SEGMENT_KEYS),
      "signatures": {
          "serving_default": {"inputs": {serving_module.IMAGES: "uint8 [batch, H, W, 3] RGB"}},
          "serve_image_bytes": {
              "inputs": {serving_module.IMAGE_BYTES: "string [batch] JPEG or PNG bytes"}},
          "serve_logits": {"inputs": {serving_module.IMAGES: "uint8 [batch, H, W, 3] RGB"}},
      },
  }


def export_saved_model(config, output_dir: str, *, checkpoint: Optional[str] = None,
                       input_size: Optional[Sequence[int]] = None,
                       max_input_size: int = DEFAULT_MAX_INPUT_SIZE, model=None,
                       dataset_descriptor: Optional[str] = None) -> str:
  """Writes the SavedModel to `output_dir`; returns it.

  Args:
    config: ExperimentOptions.
    output_dir: SavedModel directory to write.
    checkpoint: checkpoint prefix to load, or None.
    input_size: (height, width) in pixels to fix the pixel signatures' image
      size; None accepts any size.
    max_input_size: largest accepted image side in pixels.
    model: a built KMaXDeepLab for `config`, or None to build one.
    dataset_descriptor: dataset_descriptor.json of a custom dataset, or None
      (see register_dataset).
  """
  register_dataset(config, dataset_descriptor)
  module = build_serving_module(config, input_size=input_size, max_input_size=max_input_size,
                                checkpoint=checkpoint, model=model)
  info = metadata(config, module)
  with tempfile.TemporaryDirectory() as tmp:
    meta_path = os.path.join(tmp, METADATA_FILE)
    with open(meta_path, "w") as f:
      json.dump(info, f, indent=1)
    labels_path = os.path.join(tmp, LABELS_FILE)
    with open(labels_path, "w") as f:
      f.write("".join(name + "\n" for name in info["class_names"]))
    module.metadata_file = tf.saved_model.Asset(meta_path)
    module.labels_file = tf.saved_model.Asset(labels_path)
    tf.saved_model.save(module, output_dir, signatures=module.signatures(),
                        options=tf.saved_model.SaveOptions(save_debug_info=False))
  write_warmup_requests(output_dir, module.input_size or module.crop_size)
  return output_dir


def write_warmup_requests(output_dir: str, image_size: Sequence[int]) -> bool:
  """Writes TF Serving warmup requests (one per signature); False without the serving API.

  Args:
    output_dir: the SavedModel directory.
    image_size: (height, width) in pixels of the grey warmup image.
  """
  try:
    from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
    from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  image = tf.fill([1, *image_size, 3], tf.constant(128, tf.uint8))
  inputs = {
      "serving_default": {serving_module.IMAGES: image},
      "serve_logits": {serving_module.IMAGES: image},
      "serve_image_bytes": {serving_module.IMAGE_BYTES: tf.io.encode_png(image[0])[tf.newaxis]},
  }
  path = os.path.join(output_dir, WARMUP_FILE)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tf.io.TFRecordWriter(path) as writer:
    for signature, tensors in inputs.items():
      request = predict_pb2.PredictRequest()
      request.model_spec.signature_name = signature
      for name, value in tensors.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
      log = prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(request=request))
      writer.write(log.SerializeToString())
  return True
