"""Dataset descriptors survive the JSON written next to the records."""
import pytest

from kmax_tf.data import datasets
from kmax_tf.data import descriptor_json
from kmax_tf.data.panoptic_data_error import PanopticDataError


@pytest.mark.parametrize("name", datasets.dataset_names())
def test_round_trip(tmp_path, name):
  descriptor = datasets.get_dataset_descriptor(name)
  path = descriptor_json.write_descriptor(descriptor, str(tmp_path))
  assert path.endswith(descriptor_json.DESCRIPTOR_FILENAME)
  assert descriptor_json.read_descriptor(path) == descriptor


def test_invalid(tmp_path):
  path = tmp_path / descriptor_json.DESCRIPTOR_FILENAME
  path.write_text('{"name": "x"}')
  with pytest.raises(PanopticDataError, match="not a valid dataset "
                     "descriptor"):
    descriptor_json.read_descriptor(str(path))
  path.write_text("{")
  with pytest.raises(PanopticDataError, match="not valid JSON"):
    descriptor_json.read_descriptor(str(path))
