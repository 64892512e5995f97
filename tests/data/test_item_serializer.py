"""Images are stored as TensorFlow decodes them: RGB, unchanged if possible."""
import io

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from kmax_tf.data import item_serializer
from kmax_tf.data.conversion_item import ConversionItem
from kmax_tf.data.panoptic_data_error import PanopticDataError


def _save(path, array, mode=None, **kwargs):
  image = Image.fromarray(array)
  if mode:
    image = image.convert(mode)
  image.save(path, **kwargs)
  return str(path)


def test_rgb_and_grey_files_are_kept(tmp_path):
  rgb = np.random.RandomState(0).randint(0, 255, (5, 7, 3)).astype(np.uint8)
  path = _save(tmp_path / "a.png", rgb)
  data, file_format, height, width = item_serializer.rgb_image_bytes(path)
  assert (file_format, height, width) == ("png", 5, 7)
  assert data == (tmp_path / "a.png").read_bytes()
  path = _save(tmp_path / "g.jpg", rgb[..., 0])
  data, file_format, _, _ = item_serializer.rgb_image_bytes(path)
  assert file_format == "jpeg" and data == (tmp_path / "g.jpg").read_bytes()


def test_other_modes_are_reencoded_as_rgb(tmp_path):
  rgb = np.zeros((4, 4, 3), np.uint8)
  rgb[:2] = (255, 0, 0)
  path = _save(tmp_path / "p.png", rgb, mode="P")
  data, file_format, _, _ = item_serializer.rgb_image_bytes(path)
  assert file_format == "png"
  np.testing.assert_array_equal(tf.io.decode_image(data, channels=3), rgb)
  path = _save(tmp_path / "c.jpg", rgb, mode="CMYK")
  data, file_format, _, _ = item_serializer.rgb_image_bytes(path)
  assert file_format == "jpeg"
  assert Image.open(io.BytesIO(data)).mode == "RGB"


def test_label_size_must_match(tmp_path):
  image = _save(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
  label = _save(tmp_path / "l.png", np.zeros((4, 5, 3), np.uint8))
  from kmax_tf.data.panoptic_label_encoder import PanopticLabelEncoder  # pylint: disable=g-import-not-at-top
  encoder = PanopticLabelEncoder({}, [], 0, 256)
  with pytest.raises(PanopticDataError, match="l.png: annotation size"):
    item_serializer.serialize_item(ConversionItem(image, "a", label, []),
                                   encoder)
  with pytest.raises(PanopticDataError, match="missing.png does not exist"):
    item_serializer.serialize_item(
        ConversionItem(str(tmp_path / "missing.png"), "m"), None)
