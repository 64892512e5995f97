"""Writes panoptic predictions in the COCO panoptic results format (Kirillov et al., CVPR 2019).

This is what the COCO panoptic test server, panopticapi `pq_compute`, cityscapesScripts
`evaluatePanoptic` and `python -m kmax_tf.evaluation.panoptic` read: one RGB PNG per image
(segment id = R + 256 G + 256^2 B, 0 = void) and one JSON whose "annotations" list, per image,
the PNG's file name and its segments (id, category_id, iscrowd, area, bbox).

Model outputs are panoptic maps (class * label_divisor + instance) over contiguous class ids;
`class_to_category` maps those to dataset category ids. Every file is written under a temporary
name and renamed into place.
"""
import json
import os
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from kmax_tf.evaluation import panoptic_png


def categories_of(descriptor) -> list:
  """COCO category dicts (dataset ids, names, isthing, colours) of a DatasetDescriptor.

  Args:
    descriptor: DatasetDescriptor; its void class is left out.
  """
  return [{"id": int(descriptor.train_id_to_eval_id[c]), "name": descriptor.class_names[c],
           "isthing": int(descriptor.is_thing(c)), "color": list(descriptor.class_colors[c])}
          for c in range(descriptor.num_classes) if c != descriptor.ignore_label]


def class_to_category_of(descriptor) -> dict:
  """Model class id -> dataset category id of a DatasetDescriptor (void left out).

  Args:
    descriptor: DatasetDescriptor (train_id_to_eval_id gives the category ids).
  """
  return {c: int(descriptor.train_id_to_eval_id[c])
          for c in range(descriptor.num_classes) if c != descriptor.ignore_label}


def for_descriptor(descriptor, output_json: str, output_folder: Optional[str] = None):
  """A CocoPanopticWriter in the label space of a DatasetDescriptor.

  Args:
    descriptor: DatasetDescriptor of the predictions' classes.
    output_json: path of the JSON to write.
    output_folder: where the PNGs go; default `output_json` without ".json".
  """
  return CocoPanopticWriter(output_json, categories_of(descriptor),
                            class_to_category_of(descriptor), descriptor.panoptic_label_divisor,
                            descriptor.ignore_label, output_folder=output_folder)


class CocoPanopticWriter:
  """Collects panoptic maps as COCO panoptic PNGs plus one JSON (written by `close()`).

  Args:
    output_json: path of the JSON to write.
    categories: the dataset's COCO category dicts (id, name, isthing, ...), copied into the JSON.
    class_to_category: model class id -> category id (a mapping or a sequence indexed by class).
    label_divisor: panoptic id = class * label_divisor + instance.
    ignored_label: the class written as void (segment id 0).
    output_folder: where the PNGs go; default `output_json` without ".json".
  """

  def __init__(self, output_json: str, categories: Sequence[Mapping],
               class_to_category: Union[Mapping[int, int], Sequence[int]], label_divisor: int,
               ignored_label: int, output_folder: Optional[str] = None):
    self.output_json = output_json
    self.output_folder = output_folder or os.path.splitext(output_json)[0]
    self.categories = [dict(c) for c in categories]
    if not isinstance(class_to_category, Mapping):
      class_to_category = dict(enumerate(class_to_category))
    known = {c["id"] for c in self.categories}
    unknown = sorted(set(class_to_category.values()) - known)
    if unknown:
      raise ValueError(f"class_to_category maps to category ids {unknown} that are not in "
                       "`categories`.")
    self.class_to_category = {int(k): int(v) for k, v in class_to_category.items()}
    self.label_divisor = int(label_divisor)
    self.ignored_label = int(ignored_label)
    self.annotations = []
    self._image_ids = set()
    os.makedirs(self.output_folder, exist_ok=True)

  def add(self, image_id, panoptic: np.ndarray, file_name: Optional[str] = None) -> dict:
    """Writes one image's PNG and records its annotation; returns the annotation.

    Args:
      image_id: the JSON's image id (int or str), unique per writer.
      panoptic: integer [H, W] panoptic ids (class * label_divisor + instance).
      file_name: PNG file name inside output_folder; default f"{image_id}.png".

    Returns:
      {"image_id", "file_name", "segments_info": [{"id", "category_id",
      "iscrowd", "area" (pixels), "bbox" ([x, y, w, h])}]}, segments in
      increasing panoptic id order with ids 1, 2, ...
    """
    if image_id in self._image_ids:
      raise ValueError(f"Image {image_id!r} was already written.")
    panoptic = np.asarray(panoptic, np.int64)
    if panoptic.ndim != 2:
      raise ValueError(f"Expected a [H, W] panoptic map, got shape {panoptic.shape}.")
    file_name = file_name or f"{image_id}.png"
    labels, inverse = np.unique(panoptic, return_inverse=True)
    inverse = inverse.reshape(panoptic.shape)
    classes = labels // self.label_divisor
    segment_ids = np.zeros(len(labels), np.int64)
    segments = []
    kept = np.flatnonzero(classes != self.ignored_label)
    for k in kept:
      if int(classes[k]) not in self.class_to_category:
        raise ValueError(f"Image {image_id!r}: class {int(classes[k])} has no category id "
                         "(not in class_to_category).")
    areas = np.bincount(inverse.ravel(), minlength=len(labels))
    boxes = _boxes(inverse, len(labels))
    for next_id, k in enumerate(kept, start=1):
      segment_ids[k] = next_id
      segments.append({"id": next_id,
                       "category_id": self.class_to_category[int(classes[k])],
                       "iscrowd": 0, "area": int(areas[k]), "bbox": boxes[k]})
    panoptic_png.write_segment_ids(os.path.join(self.output_folder, file_name),
                                   segment_ids[inverse])
    annotation = {"image_id": image_id, "file_name": file_name, "segments_info": segments}
    self.annotations.append(annotation)
    self._image_ids.add(image_id)
    return annotation

  def close(self) -> None:
    """Writes the JSON (annotations + categories)."""
    content = {"annotations": self.annotations, "categories": self.categories}
    panoptic_png.atomic_write_bytes(self.output_json, json.dumps(content).encode("utf-8"))

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, tb):
    if exc_type is None:
      self.close()
    return False


def _boxes(index: np.ndarray, count: int) -> list:
  """COCO [x, y, width, height] of every label of a [H, W] index map."""
  h, w = index.shape
  rows = np.zeros((count, h), bool)
  cols = np.zeros((count, w), bool)
  rows[index, np.arange(h)[:, None]] = True
  cols[index, np.arange(w)[None, :]] = True
  boxes = []
  for k in range(count):
    ys, xs = np.flatnonzero(rows[k]), np.flatnonzero(cols[k])
    boxes.append([int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)]
                 if len(ys) else [0, 0, 0, 0])
  return boxes
