"""Any dataset in COCO panoptic format -> conversion items and its own label
space.

Format: Kirillov et al., "Panoptic Segmentation", CVPR 2019 (COCO panoptic).

The label space comes from the JSON's "categories": training id 0 is void
(the ignore label) and training id i + 1 is the i-th category in file order;
"isthing" marks thing classes, "color" (optional) the visualization colour,
"id" becomes the evaluation category id. The converter writes the resulting
DatasetDescriptor next to the shards (descriptor_json), where the input
pipeline finds and registers it, so a new dataset needs no code edits.

Layout with --root (each path can be given explicitly instead):
  {split}/                               images named in the JSON
  annotations/panoptic_{split}.json
  annotations/panoptic_{split}/*.png
"""

import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from kmax_tf.data import coco_panoptic_json
from kmax_tf.data.conversion_item import ConversionItem
from kmax_tf.data.dataset_descriptor import DatasetDescriptor
from kmax_tf.data.panoptic_data_error import PanopticDataError

DEFAULT_SPLITS = ("train", "val")
DEFAULT_LABEL_DIVISOR = 1000
VOID_NAME = "void"


def default_paths(root: str, split: str) -> Tuple[str, str, str]:
  """(image_dir, panoptic_json, panoptic_dir) under `root`."""
  annotations = os.path.join(root, "annotations")
  return (os.path.join(root, split),
          os.path.join(annotations, f"panoptic_{split}.json"),
          os.path.join(annotations, f"panoptic_{split}"))


def _palette_color(index: int) -> Tuple[int, int, int]:
  """PASCAL VOC-style colour: bits of the index spread over R, G and B."""
  red = green = blue = 0
  for shift in range(7, -1, -1):
    red |= ((index >> 0) & 1) << shift
    green |= ((index >> 1) & 1) << shift
    blue |= ((index >> 2) & 1) << shift
    index >>= 3
  return red, green, blue


def descriptor_from_categories(name: str, categories: Sequence[Mapping],
                               label_divisor: int = DEFAULT_LABEL_DIVISOR,
                               splits_to_sizes: Optional[Mapping[str, int]]
                               = None) -> DatasetDescriptor:
  """The label space of a COCO-panoptic JSON's categories (void = id 0).

  Training id i + 1 is categories[i]; training id 0 is void.

  Args:
    name: the dataset name.
    categories: the JSON's category dicts (id, name, isthing, optional
      color as RGB 0..255).
    label_divisor: panoptic id = class * label_divisor + instance.
    splits_to_sizes: split name -> number of images, if known.
  """
  category_ids = [int(c["id"]) for c in categories]
  void_eval_id = 0 if 0 not in category_ids else max(category_ids) + 1
  colors = [(0, 0, 0)]
  for i, category in enumerate(categories):
    color = category.get("color")
    colors.append(tuple(int(v) for v in color) if color
                  else _palette_color(i + 1))
  return DatasetDescriptor(
      name=name,
      num_classes=len(categories) + 1,
      ignore_label=0,
      panoptic_label_divisor=int(label_divisor),
      class_has_instances_list=tuple(
          i + 1 for i, c in enumerate(categories) if c.get("isthing")),
      class_names=(VOID_NAME,) + tuple(str(c["name"]) for c in categories),
      class_colors=tuple(colors),
      train_id_to_eval_id=(void_eval_id,) + tuple(category_ids),
      splits_to_sizes=dict(splits_to_sizes or {}))


def conversion_items(root: Optional[str], split: str, dataset_name: str,
                     image_dir: Optional[str] = None,
                     panoptic_json: Optional[str] = None,
                     panoptic_dir: Optional[str] = None,
                     label_divisor: int = DEFAULT_LABEL_DIVISOR,
                     ) -> Tuple[List[ConversionItem], DatasetDescriptor,
                                Dict[int, int]]:
  """Items of one split, the JSON's descriptor, category -> training id.

  Args:
    root: dataset root folder in the custom layout, or None when all three
      paths are given.
    split: split name, e.g. 'train' or 'val'.
    dataset_name: the name configs give in dataset_options.dataset.
    image_dir: image folder; None: the layout's.
    panoptic_json: COCO-panoptic JSON; None: the layout's.
    panoptic_dir: folder of the panoptic PNGs; None: the layout's.
    label_divisor: panoptic id = class * label_divisor + instance.

  Returns:
    (conversion items, DatasetDescriptor, COCO category id -> training id).
  """
  if not root and not (image_dir and panoptic_json and panoptic_dir):
    raise PanopticDataError(
        "custom datasets need --root or all of --image_dir, --panoptic_json "
        "and --panoptic_dir")
  default_image_dir, default_json, default_dir = default_paths(root or "",
                                                               split)
  image_dir = image_dir or default_image_dir
  panoptic_json = panoptic_json or default_json
  panoptic_dir = panoptic_dir or default_dir
  data = coco_panoptic_json.read_json(panoptic_json)
  categories = coco_panoptic_json.categories(data, panoptic_json)

  def locate_image(image, unused_annotation):
    return (os.path.join(image_dir, image["file_name"]),
            coco_panoptic_json.file_stem(image["file_name"]))

  items = coco_panoptic_json.conversion_items(data, panoptic_json,
                                              panoptic_dir, locate_image)
  descriptor = descriptor_from_categories(
      dataset_name, categories, label_divisor, {split: len(items)})
  mapping = {int(c["id"]): i + 1 for i, c in enumerate(categories)}
  return items, descriptor, mapping
