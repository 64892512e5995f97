"""COCO-panoptic segments -> panoptic ids, DeepLab2's rules and errors."""
import io

import numpy as np
from PIL import Image
import pytest

from kmax_tf.data.panoptic_data_error import PanopticDataError
from kmax_tf.data.panoptic_label_encoder import PanopticLabelEncoder

_IDS = np.array([[1, 1, 2, 2], [3, 3, 4, 0]], np.int32)
_SEGMENTS = [
    {"id": 1, "category_id": 10, "area": 2},  # stuff
    {"id": 2, "category_id": 20, "area": 2},  # thing #1
    {"id": 3, "category_id": 20, "area": 2, "iscrowd": 1},
    {"id": 4, "category_id": 20, "area": 1},  # thing #2
]


def _encoder(**kwargs):
  return PanopticLabelEncoder({10: 1, 20: 2}, [2], ignore_label=0,
                              label_divisor=100, **kwargs)


def test_encode():
  np.testing.assert_array_equal(_encoder().encode(_IDS, _SEGMENTS),
                                [[100, 100, 201, 201], [0, 0, 202, 0]])
  keep_crowd = _encoder(treat_crowd_as_ignore=False).encode(_IDS, _SEGMENTS)
  np.testing.assert_array_equal(keep_crowd[1, :2], [200, 200])


def test_errors():
  encoder = _encoder()
  with pytest.raises(PanopticDataError, match="a.png: segment 1 has "
                     "category_id 99"):
    encoder.encode(_IDS, [{"id": 1, "category_id": 99}], source="a.png")
  with pytest.raises(PanopticDataError, match="lists area 5 but has 2"):
    encoder.encode(_IDS, [{"id": 1, "category_id": 10, "area": 5}])
  assert _encoder(check_area=False).encode(
      _IDS, [{"id": 1, "category_id": 10, "area": 5}])[0, 0] == 100
  with pytest.raises(PanopticDataError, match="stuff category 10 is marked"):
    encoder.encode(_IDS, [{"id": 1, "category_id": 10, "iscrowd": 1}])
  many = np.arange(101, dtype=np.int32).reshape(1, 101) + 1
  with pytest.raises(PanopticDataError, match="more than 99 instances"):
    encoder.encode(many, [{"id": i + 1, "category_id": 20}
                          for i in range(101)])


def test_read_segment_ids():
  rgb = np.zeros((1, 2, 3), np.uint8)
  rgb[0, 1] = (1, 2, 3)
  buffer = io.BytesIO()
  Image.fromarray(rgb).save(buffer, format="PNG")
  ids = PanopticLabelEncoder.read_segment_ids(buffer.getvalue())
  np.testing.assert_array_equal(ids, [[0, 1 + 2 * 256 + 3 * 65536]])
  buffer = io.BytesIO()
  Image.fromarray(rgb[..., 0]).save(buffer, format="PNG")
  with pytest.raises(PanopticDataError, match="x.png: .*must be RGB"):
    PanopticLabelEncoder.read_segment_ids(buffer.getvalue(), "x.png")
