"""COCO-panoptic JSON structure checks."""
import pytest

from kmax_tf.data import coco_panoptic_json
from kmax_tf.data.panoptic_data_error import PanopticDataError


def _locate(image, unused_annotation):
  return "/images/" + image["file_name"], image["file_name"][:-4]


def _data():
  return {
      "images": [{"id": 2, "file_name": "b.jpg"}, {"id": 1,
                                                     "file_name": "a.jpg"}],
      "annotations": [
          {"image_id": 1, "file_name": "a.png", "segments_info": []},
          {"image_id": 2, "file_name": "b.png",
           "segments_info": [{"id": 5, "category_id": 1}]}],
      "categories": [{"id": 1, "name": "thing", "isthing": 1}],
  }


def test_items_sorted_with_labels():
  items = coco_panoptic_json.conversion_items(_data(), "p.json", "/labels",
                                              _locate)
  assert [item.name for item in items] == ["a", "b"]
  assert items[1].label_path == "/labels/b.png"
  assert items[1].segments == [{"id": 5, "category_id": 1}]
  unlabeled = dict(_data())
  del unlabeled["annotations"]
  items = coco_panoptic_json.conversion_items(unlabeled, "p.json", "",
                                              _locate)
  assert all(item.label_path is None for item in items)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["images"].append({"id": 1, "file_name": "c.jpg"}),
     "listed twice"),
    (lambda d: d["annotations"][0].update(image_id=7), "not in 'images'"),
    (lambda d: d["annotations"].pop(), "b.jpg has no annotation"),
    (lambda d: d.pop("images"), "no 'images'"),
])
def test_structure_errors(edit, message):
  data = _data()
  edit(data)
  with pytest.raises(PanopticDataError, match=message):
    coco_panoptic_json.conversion_items(data, "p.json", "", _locate)


def test_categories_checked():
  with pytest.raises(PanopticDataError, match="no 'categories'"):
    coco_panoptic_json.categories({}, "p.json")
  with pytest.raises(PanopticDataError, match="listed twice"):
    coco_panoptic_json.categories(
        {"categories": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]},
        "p.json")
