"""panoptic_png: every decoder path reads the same ids; writes are atomic."""
import os

import numpy as np
import pytest
from PIL import Image

from kmax_tf.evaluation import panoptic_png


@pytest.fixture
def ids():
  rng = np.random.default_rng(0)
  out = rng.integers(0, 1 << 24, (7, 9), dtype=np.int64)
  out[0] = 0
  return out


@pytest.mark.parametrize("decoder", ["pyspng", "pillow"])
def test_decoders_agree(ids, tmp_path, monkeypatch, decoder):
  path = str(tmp_path / "a.png")
  panoptic_png.write_segment_ids(path, ids)
  if decoder == "pyspng":
    assert panoptic_png.pyspng is not None, "pyspng is a test dependency"
  else:
    monkeypatch.setattr(panoptic_png, "pyspng", None)
  read = panoptic_png.read_segment_ids(path)
  assert read.dtype == np.uint32
  np.testing.assert_array_equal(read, ids)
  np.testing.assert_array_equal(panoptic_png.read_id_codes(path) & 0xFFFFFF, ids)
  rgba = np.concatenate([panoptic_png.id_to_rgb(ids), np.full(ids.shape + (1,), 200, np.uint8)], -1)
  Image.fromarray(rgba).save(path)
  np.testing.assert_array_equal(panoptic_png.read_segment_ids(path), ids)


def test_grey_palette_missing_and_corrupt(tmp_path):
  grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
  Image.fromarray(grey).save(tmp_path / "g.png")
  np.testing.assert_array_equal(panoptic_png.read_segment_ids(str(tmp_path / "g.png")), grey)
  palette = Image.fromarray(np.array([[0, 1]], np.uint8), mode="P")
  palette.putpalette([0, 0, 0, 1, 2, 3] + [0] * 762)
  palette.save(tmp_path / "p.png")
  np.testing.assert_array_equal(panoptic_png.read_segment_ids(str(tmp_path / "p.png")),
                                [[0, 1 + 2 * 256 + 3 * 65536]])
  with pytest.raises(FileNotFoundError):
    panoptic_png.read_segment_ids(str(tmp_path / "missing.png"))
  (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
  with pytest.raises(ValueError, match="Cannot decode PNG"):
    panoptic_png.read_segment_ids(str(tmp_path / "bad.png"))
  with pytest.raises(ValueError, match=r"\[0, 2\^24\)"):
    panoptic_png.id_to_rgb(np.array([1 << 24]))


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
  target = str(tmp_path / "x" / "out.png")
  panoptic_png.atomic_write_bytes(target, b"first")

  def broken_replace(src, dst):
    raise OSError("disk full")
  monkeypatch.setattr(os, "replace", broken_replace)
  with pytest.raises(OSError, match="disk full"):
    panoptic_png.atomic_write_bytes(target, b"second")
  assert open(target, "rb").read() == b"first"
  assert os.listdir(tmp_path / "x") == ["out.png"]
