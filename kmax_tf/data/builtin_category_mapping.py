"""Category ids of a COCO-panoptic JSON -> training ids of a built-in dataset.

COCO, ADE20K and Cityscapes (labelIds variant) JSON files use the category ids
the datasets' official tools use, which DatasetDescriptor.train_id_to_eval_id
lists; cityscapesScripts' "_trainId" JSON uses the training ids themselves.
"""

import logging
from typing import Dict, Mapping, Sequence

from kmax_tf.data.dataset_descriptor import DatasetDescriptor
from kmax_tf.data.panoptic_data_error import PanopticDataError


def eval_id_mapping(descriptor: DatasetDescriptor) -> Dict[int, int]:
  """Official category id -> training id, for every training id."""
  return {int(eval_id): train_id
          for train_id, eval_id in enumerate(descriptor.train_id_to_eval_id)}


def check_categories(descriptor: DatasetDescriptor,
                     json_categories: Sequence[Mapping],
                     mapping: Mapping[int, int], json_path: str) -> None:
  """Every JSON category must map to a training id; thing flags should agree.

  Raises:
    PanopticDataError: a category the descriptor does not know, with a hint
      to --format=custom (label space from the JSON).
  """
  unknown = [c for c in json_categories if int(c["id"]) not in mapping]
  if unknown:
    raise PanopticDataError(
        f"{json_path}: categories {[(c['id'], c['name']) for c in unknown]} "
        f"are not categories of dataset {descriptor.name!r}. For a dataset "
        "with its own label space use --format=custom, which takes the "
        "categories from the JSON.")
  for category in json_categories:
    if "isthing" not in category:
      continue
    train_id = mapping[int(category["id"])]
    if bool(category["isthing"]) != descriptor.is_thing(train_id):
      logging.warning(
          "%s: category %s (%s) has isthing=%s, but %s treats training id "
          "%d as %s; the descriptor wins.", json_path, category["id"],
          category["name"], category["isthing"], descriptor.name, train_id,
          "a thing" if descriptor.is_thing(train_id) else "stuff")
