"""ADE20K panoptic (Zhou et al., CVPR 2017) in COCO-panoptic format -> items.

kMaX-DeepLab: Yu et al., "k-means Mask Transformer", ECCV 2022.

Layout (--root, e.g. ADEChallengeData2016 with the panoptic annotations made
by the common COCO-format conversion, as DeepLab2 expects):
  images/training/*.jpg, images/validation/*.jpg
  ade20k_panoptic_{train,val}.json
  ade20k_panoptic_{train,val}/*.png
JSON category ids are the 0-based ADE20K-150 class ids (255 = void); they map
to DeepLab2's training ids id + 1 (void -> 0). Records are named by the image
file stem.
"""

import os
from typing import Dict, List, Optional, Tuple

from kmax_tf.data import builtin_category_mapping
from kmax_tf.data import coco_panoptic_json
from kmax_tf.data import datasets
from kmax_tf.data.conversion_item import ConversionItem
from kmax_tf.data.dataset_descriptor import DatasetDescriptor

DATASET_NAME = datasets.ADE20K_PANOPTIC
DEFAULT_SPLITS = ("train", "val")
_IMAGE_FOLDERS = {"train": "training", "val": "validation"}


def default_paths(root: str, split: str) -> Tuple[str, str, str]:
  """(image_dir, panoptic_json, panoptic_dir) of the usual layout."""
  return (os.path.join(root, "images", _IMAGE_FOLDERS.get(split, split)),
          os.path.join(root, f"ade20k_panoptic_{split}.json"),
          os.path.join(root, f"ade20k_panoptic_{split}"))


def conversion_items(root: str, split: str, image_dir: Optional[str] = None,
                     panoptic_json: Optional[str] = None,
                     panoptic_dir: Optional[str] = None,
                     ) -> Tuple[List[ConversionItem], DatasetDescriptor,
                                Dict[int, int]]:
  """Items of one split, the dataset descriptor, category -> training id."""
  default_image_dir, default_json, default_dir = default_paths(root, split)
  image_dir = image_dir or default_image_dir
  panoptic_json = panoptic_json or default_json
  panoptic_dir = panoptic_dir or default_dir
  data = coco_panoptic_json.read_json(panoptic_json)
  descriptor = datasets.get_dataset_descriptor(DATASET_NAME)
  mapping = builtin_category_mapping.eval_id_mapping(descriptor)
  if "annotations" in data:
    builtin_category_mapping.check_categories(
        descriptor, coco_panoptic_json.categories(data, panoptic_json),
        mapping, panoptic_json)

  def locate_image(image, unused_annotation):
    return (os.path.join(image_dir, image["file_name"]),
            coco_panoptic_json.file_stem(image["file_name"]))

  items = coco_panoptic_json.conversion_items(data, panoptic_json,
                                              panoptic_dir, locate_image)
  return items, descriptor, mapping
