"""DatasetDescriptor <-> JSON, stored next to a dataset's TFRecord shards.

The converter writes `dataset_descriptor.json` into its output directory, so
the label space of a custom dataset (classes, thing classes, ignore label,
label divisor, colours, category ids) travels with its records and the input
pipeline registers it without code edits.
"""

import json
import os
from typing import Any, Dict

import tensorflow as tf

from kmax_tf.data.dataset_descriptor import DatasetDescriptor
from kmax_tf.data.panoptic_data_error import PanopticDataError

DESCRIPTOR_FILENAME = "dataset_descriptor.json"
_FORMAT_VERSION = 1


def descriptor_to_dict(descriptor: DatasetDescriptor) -> Dict[str, Any]:
  return {
      "format_version": _FORMAT_VERSION,
      "name": descriptor.name,
      "num_classes": descriptor.num_classes,
      "ignore_label": descriptor.ignore_label,
      "panoptic_label_divisor": descriptor.panoptic_label_divisor,
      "class_has_instances_list": list(descriptor.class_has_instances_list),
      "class_names": list(descriptor.class_names),
      "class_colors": [list(c) for c in descriptor.class_colors],
      "train_id_to_eval_id": list(descriptor.train_id_to_eval_id),
      "splits_to_sizes": dict(descriptor.splits_to_sizes),
  }


def descriptor_from_dict(data: Dict[str, Any],
                         source: str = "<dict>") -> DatasetDescriptor:
  try:
    return DatasetDescriptor(
        name=data["name"],
        num_classes=int(data["num_classes"]),
        ignore_label=int(data["ignore_label"]),
        panoptic_label_divisor=int(data["panoptic_label_divisor"]),
        class_has_instances_list=tuple(data["class_has_instances_list"]),
        class_names=tuple(data["class_names"]),
        class_colors=tuple(tuple(c) for c in data["class_colors"]),
        train_id_to_eval_id=tuple(data["train_id_to_eval_id"]),
        splits_to_sizes=data.get("splits_to_sizes", {}))
  except (KeyError, TypeError, ValueError) as e:
    raise PanopticDataError(
        f"{source}: not a valid dataset descriptor ({type(e).__name__}: {e})"
    ) from None


def write_descriptor(descriptor: DatasetDescriptor, directory: str) -> str:
  """Writes DESCRIPTOR_FILENAME into `directory` atomically; returns path."""
  tf.io.gfile.makedirs(directory)
  path = os.path.join(directory, DESCRIPTOR_FILENAME)
  temp_path = os.path.join(directory, f".{DESCRIPTOR_FILENAME}.{os.getpid()}")
  with tf.io.gfile.GFile(temp_path, "w") as f:
    json.dump(descriptor_to_dict(descriptor), f, indent=1)
  tf.io.gfile.rename(temp_path, path, overwrite=True)
  return path


def read_descriptor(path: str) -> DatasetDescriptor:
  with tf.io.gfile.GFile(path) as f:
    try:
      data = json.load(f)
    except json.JSONDecodeError as e:
      raise PanopticDataError(f"{path} is not valid JSON: {e}") from None
  return descriptor_from_dict(data, source=path)
