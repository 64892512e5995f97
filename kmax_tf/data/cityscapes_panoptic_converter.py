"""Cityscapes panoptic (Cordts et al., CVPR 2016) -> conversion items.

Reads the panoptic ground truth made by the official cityscapesScripts
(`csCreatePanopticImgs --use-train-id`), as DeepLab2 does. Layout (--root):
  leftImg8bit/{split}/{city}/{image_id}_leftImg8bit.png
  gtFine/cityscapes_panoptic_{split}_trainId.json
  gtFine/cityscapes_panoptic_{split}_trainId/*.png
The JSON made without --use-train-id (category ids = Cityscapes label ids) is
read as well (--panoptic_json/--panoptic_dir); which kind a file is follows
from its category names. Records are named by the image id, e.g.
"frankfurt_000000_000294", and shards are prefixed "{split}_fine" (the split
names of the Cityscapes descriptor). The test split has no annotations and
gives unlabeled records.
"""

import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from kmax_tf.data import builtin_category_mapping
from kmax_tf.data import coco_panoptic_json
from kmax_tf.data import datasets
from kmax_tf.data import file_access
from kmax_tf.data.conversion_item import ConversionItem
from kmax_tf.data.dataset_descriptor import DatasetDescriptor
from kmax_tf.data.panoptic_data_error import PanopticDataError

DATASET_NAME = datasets.CITYSCAPES_PANOPTIC
DEFAULT_SPLITS = ("train", "val")
_IMAGE_SUFFIX = "_leftImg8bit.png"


def record_prefix(split: str) -> str:
  return f"{split}_fine"


def default_paths(root: str, split: str) -> Tuple[str, str, str]:
  """(image_dir, panoptic_json, panoptic_dir) of the official layout."""
  gt_dir = os.path.join(root, "gtFine")
  return (os.path.join(root, "leftImg8bit", split),
          os.path.join(gt_dir, f"cityscapes_panoptic_{split}_trainId.json"),
          os.path.join(gt_dir, f"cityscapes_panoptic_{split}_trainId"))


def _images_by_id(image_dir: str) -> Dict[str, str]:
  paths = file_access.glob(os.path.join(image_dir, "*", "*" + _IMAGE_SUFFIX))
  if not paths:
    raise PanopticDataError(
        f"no Cityscapes images '*{_IMAGE_SUFFIX}' in the city folders of "
        f"{image_dir}")
  return {os.path.basename(p)[:-len(_IMAGE_SUFFIX)]: p for p in paths}


def category_mapping(descriptor: DatasetDescriptor,
                     json_categories: Sequence[Mapping],
                     json_path: str) -> Dict[int, int]:
  """Training ids of a trainId JSON (identity) or a labelIds JSON."""
  names = {int(c["id"]): c["name"] for c in json_categories}
  if all(0 <= i < descriptor.num_classes and descriptor.class_names[i] == name
         for i, name in names.items()):
    return {i: i for i in range(descriptor.num_classes)}
  mapping = builtin_category_mapping.eval_id_mapping(descriptor)
  if all(i in mapping and descriptor.class_names[mapping[i]] == name
         for i, name in names.items()):
    return mapping
  raise PanopticDataError(
      f"{json_path}: categories {sorted(names.items())} are neither "
      "Cityscapes training ids nor label ids (expected the JSON of "
      "cityscapesScripts' csCreatePanopticImgs)")


def conversion_items(root: str, split: str, image_dir: Optional[str] = None,
                     panoptic_json: Optional[str] = None,
                     panoptic_dir: Optional[str] = None,
                     ) -> Tuple[List[ConversionItem], DatasetDescriptor,
                                Dict[int, int]]:
  """Items of one split, the dataset descriptor, category -> training id.

  Arguments as in kmax_tf.data.coco_panoptic_converter.conversion_items, with
  `root` in Cityscapes's layout (see default_paths; '' when all three paths are
  given).
  """
  default_image_dir, default_json, default_dir = default_paths(root, split)
  image_dir = image_dir or default_image_dir
  panoptic_json = panoptic_json or default_json
  panoptic_dir = panoptic_dir or default_dir
  descriptor = datasets.get_dataset_descriptor(DATASET_NAME)
  images = _images_by_id(image_dir)
  if split == "test" and not file_access.exists(panoptic_json):
    items = [ConversionItem(path, image_id)
             for image_id, path in sorted(images.items())]
    return items, descriptor, {}
  data = coco_panoptic_json.read_json(panoptic_json)
  mapping = category_mapping(
      descriptor, coco_panoptic_json.categories(data, panoptic_json),
      panoptic_json)

  def locate_image(image, unused_annotation):
    image_id = str(image["id"])
    if image_id not in images:
      raise PanopticDataError(
          f"{panoptic_json}: image {image_id} has no file "
          f"{image_id}{_IMAGE_SUFFIX} under {image_dir}")
    return images[image_id], image_id

  items = coco_panoptic_json.conversion_items(data, panoptic_json,
                                              panoptic_dir, locate_image)
  return items, descriptor, mapping
