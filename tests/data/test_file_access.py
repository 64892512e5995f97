"""Local file access of the converters."""
import pytest

from kmax_tf.data import file_access
from kmax_tf.data.panoptic_data_error import PanopticDataError


def test_read_glob_exists(tmp_path):
  (tmp_path / "b.txt").write_bytes(b"bee")
  (tmp_path / "a.txt").write_bytes(b"ay")
  assert file_access.read_bytes(str(tmp_path / "a.txt")) == b"ay"
  assert file_access.glob(str(tmp_path / "*.txt")) == [
      str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
  assert file_access.exists(str(tmp_path / "a.txt"))
  with pytest.raises(PanopticDataError, match="c.txt does not exist"):
    file_access.read_bytes(str(tmp_path / "c.txt"))
