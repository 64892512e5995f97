"""Official category ids -> training ids of the built-in datasets."""
import logging

from kmax_tf.data import builtin_category_mapping
from kmax_tf.data import datasets


def test_eval_id_mapping():
  coco = builtin_category_mapping.eval_id_mapping(
      datasets.get_dataset_descriptor("coco_panoptic"))
  assert coco[1] == 1 and coco[200] == 133 and coco[92] == 81
  ade = builtin_category_mapping.eval_id_mapping(
      datasets.get_dataset_descriptor("ade20k_panoptic"))
  assert ade[255] == 0 and ade[0] == 1 and ade[149] == 150


def test_thing_flag_disagreement_is_logged(caplog):
  coco = datasets.get_dataset_descriptor("coco_panoptic")
  mapping = builtin_category_mapping.eval_id_mapping(coco)
  with caplog.at_level(logging.WARNING):
    builtin_category_mapping.check_categories(
        coco, [{"id": 1, "name": "person", "isthing": 0}], mapping, "p.json")
  assert "isthing=0" in caplog.text
