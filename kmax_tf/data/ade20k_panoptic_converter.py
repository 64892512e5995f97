"""ADE20K panoptic (Zhou et al., CVPR 2017) in COCO-panoptic format -> items.

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
  """Items of one split, the dataset descriptor, category -> training id.

  Arguments as in kmax_tf.data.coco_panoptic_converter.conversion_items, with
  `root` in ADE20K's layout (see default_paths; '' when all three paths are
  given).
  """
  defaults = default_paths(root, split)
  paths = (image_dir or defaults[0], panoptic_json or defaults[1], panoptic_dir or defaults[2])
  descriptor = datasets.get_dataset_descriptor(DATASET_NAME)
  items, mapping = coco_panoptic_json.builtin_dataset_items(descriptor, paths)
  return items, descriptor, mapping
