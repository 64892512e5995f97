"""Reading COCO-panoptic-format JSON files into conversion items.

Format: Kirillov et al., "Panoptic Segmentation", CVPR 2019 (COCO panoptic):
{"images": [{"id", "file_name", ...}], "annotations": [{"image_id",
"file_name" (the PNG), "segments_info": [...]}], "categories": [{"id", "name",
"isthing", "color"?}]}. COCO, Cityscapes (cityscapesScripts'
createPanopticImgs), ADE20K and custom datasets all use it.
"""

import json
import os
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from kmax_tf.data import builtin_category_mapping
from kmax_tf.data import file_access
from kmax_tf.data.conversion_item import ConversionItem
from kmax_tf.data.panoptic_data_error import PanopticDataError

# (image entry, annotation entry or None) -> (image path, record name).
ImageLocator = Callable[[Mapping, Optional[Mapping]], Tuple[str, str]]


def read_json(path: str) -> Dict:
  try:
    return json.loads(file_access.read_bytes(path))
  except json.JSONDecodeError as e:
    raise PanopticDataError(f"{path} is not valid JSON: {e}") from None


def file_stem(file_name: str) -> str:
  return os.path.splitext(os.path.basename(file_name))[0]


def categories(data: Mapping, json_path: str) -> List[Mapping]:
  """The JSON's categories, checked for the fields converters need."""
  entries = data.get("categories")
  if not entries:
    raise PanopticDataError(f"{json_path} has no 'categories'")
  seen = set()
  for entry in entries:
    if "id" not in entry or "name" not in entry:
      raise PanopticDataError(
          f"{json_path}: category {entry} lacks 'id' or 'name'")
    if entry["id"] in seen:
      raise PanopticDataError(
          f"{json_path}: category id {entry['id']} is listed twice")
    seen.add(entry["id"])
  return list(entries)


def conversion_items(data: Mapping, json_path: str, label_dir: str,
                     locate_image: ImageLocator) -> List[ConversionItem]:
  """One item per JSON image, sorted by record name.

  Args:
    data: The parsed JSON.
    json_path: Its path (for error messages).
    label_dir: Folder of the annotation PNGs.
    locate_image: Gives the image file and record name of an image entry.

  Returns:
    Items with label_path/segments set when the JSON has annotations, unset
    (unlabeled, e.g. a test split's image-info file) otherwise.

  Raises:
    PanopticDataError: duplicate image ids, annotations of unknown images, or
      images without annotation in an annotated file.
  """
  images = data.get("images")
  if images is None:
    raise PanopticDataError(f"{json_path} has no 'images' list")
  by_id = {}
  for image in images:
    if image["id"] in by_id:
      raise PanopticDataError(f"{json_path}: image id {image['id']} is "
                              "listed twice")
    by_id[image["id"]] = image
  annotations = data.get("annotations")
  by_image = {}
  for annotation in annotations or ():
    image_id = annotation["image_id"]
    if image_id not in by_id:
      raise PanopticDataError(
          f"{json_path}: annotation {annotation.get('file_name')} refers to "
          f"image id {image_id!r}, which is not in 'images'")
    if image_id in by_image:
      raise PanopticDataError(
          f"{json_path}: image id {image_id!r} has two annotations")
    by_image[image_id] = annotation
  items = []
  for image_id, image in by_id.items():
    annotation = by_image.get(image_id)
    if annotations is not None and annotation is None:
      raise PanopticDataError(
          f"{json_path}: image {image.get('file_name', image_id)} has no "
          "annotation")
    image_path, name = locate_image(image, annotation)
    if annotation is None:
      items.append(ConversionItem(image_path, name))
    else:
      items.append(ConversionItem(
          image_path, name,
          os.path.join(label_dir, annotation["file_name"]),
          list(annotation["segments_info"])))
  items.sort(key=lambda item: item.name)
  return items


def builtin_dataset_items(descriptor, paths: Tuple[str, str, str]
                          ) -> Tuple[List[ConversionItem], Dict[int, int]]:
  """Items and category -> training id of COCO-format files of a built-in dataset.

  `paths` is (image_dir, panoptic_json, panoptic_dir); images are named by the
  JSON's file_name. An image-info JSON (no annotations) gives unlabeled items.
  """
  image_dir, panoptic_json, panoptic_dir = paths
  data = read_json(panoptic_json)
  mapping = builtin_category_mapping.eval_id_mapping(descriptor)
  if "annotations" in data:
    builtin_category_mapping.check_categories(
        descriptor, categories(data, panoptic_json), mapping, panoptic_json)

  def locate_image(image, unused_annotation):
    return os.path.join(image_dir, image["file_name"]), file_stem(image["file_name"])

  return conversion_items(data, panoptic_json, panoptic_dir, locate_image), mapping
