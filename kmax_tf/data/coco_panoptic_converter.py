"""COCO panoptic (Lin et al., ECCV 2014; Kirillov et al., CVPR 2019) -> items.

Layout of the official download (--root):
  {split}2017/*.jpg
  annotations/panoptic_{split}2017.json
  annotations/panoptic_{split}2017/*.png
The test split has no panoptic annotations: it reads the image list from
annotations/image_info_test-dev2017.json and writes unlabeled records.
Category ids map to DeepLab2's contiguous ids (1..133, 0 = void); records are
named by the image file stem, as DeepLab2 names them.
"""

import os
from typing import Dict, List, Optional, Tuple

from kmax_tf.data import coco_panoptic_json
from kmax_tf.data import datasets
from kmax_tf.data.conversion_item import ConversionItem
from kmax_tf.data.dataset_descriptor import DatasetDescriptor

DATASET_NAME = datasets.COCO_PANOPTIC
DEFAULT_SPLITS = ("train", "val")


def default_paths(root: str, split: str) -> Tuple[str, str, str]:
  """(image_dir, panoptic_json, panoptic_dir) of the official layout."""
  annotations = os.path.join(root, "annotations")
  if split == "test":
    return (os.path.join(root, "test2017"),
            os.path.join(annotations, "image_info_test-dev2017.json"), "")
  return (os.path.join(root, f"{split}2017"),
          os.path.join(annotations, f"panoptic_{split}2017.json"),
          os.path.join(annotations, f"panoptic_{split}2017"))


def conversion_items(root: str, split: str, image_dir: Optional[str] = None,
                     panoptic_json: Optional[str] = None,
                     panoptic_dir: Optional[str] = None,
                     ) -> Tuple[List[ConversionItem], DatasetDescriptor,
                                Dict[int, int]]:
  """Items of one split, the dataset descriptor, category -> training id.

  Args:
    root: COCO root folder (official layout); the other arguments override
      single paths.
    split: "train", "val" or "test" (or any name when all paths are given).
    image_dir: Folder of the images named in the JSON.
    panoptic_json: COCO-panoptic JSON (or an image-info JSON: unlabeled).
    panoptic_dir: Folder of the annotation PNGs.

  Returns:
    (conversion items, DatasetDescriptor, dataset category id -> training id).
  """
  defaults = default_paths(root, split)
  paths = (image_dir or defaults[0], panoptic_json or defaults[1], panoptic_dir or defaults[2])
  descriptor = datasets.get_dataset_descriptor(DATASET_NAME)
  items, mapping = coco_panoptic_json.builtin_dataset_items(descriptor, paths)
  return items, descriptor, mapping
