"""TFRecord framing checks name the corrupt file."""
import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.data import record_check
from kmax_tf.data.panoptic_data_error import PanopticDataError


def _write(path, records):
  with tf.io.TFRecordWriter(str(path)) as writer:
    for record in records:
      writer.write(record)
  return str(path)


def test_crc32c():
  assert record_check.crc32c(b"123456789") == 0xE3069283
  assert record_check.crc32c(b"") == 0


def test_good_file(tmp_path):
  path = _write(tmp_path / "good.tfrecord", [b"a" * 10, b"", b"b" * 1000])
  assert record_check.check_record_headers(path) == 3
  assert record_check.check_tfrecord_files([path], full=True) == 3


def test_truncated_and_garbage_files(tmp_path):
  path = _write(tmp_path / "cut.tfrecord", [b"a" * 100, b"b" * 100])
  data = (tmp_path / "cut.tfrecord").read_bytes()
  (tmp_path / "cut.tfrecord").write_bytes(data[:-30])
  with pytest.raises(PanopticDataError, match="cut.tfrecord.*truncated"):
    record_check.check_record_headers(path)
  garbage = tmp_path / "garbage.tfrecord"
  garbage.write_bytes(np.random.RandomState(0).bytes(64))
  with pytest.raises(PanopticDataError, match="garbage.tfrecord.*checksum"):
    record_check.check_record_headers(str(garbage))


def test_flipped_data_byte_needs_the_full_check(tmp_path):
  path = _write(tmp_path / "flip.tfrecord", [b"a" * 100, b"b" * 100])
  data = bytearray((tmp_path / "flip.tfrecord").read_bytes())
  data[130] ^= 1  # inside the second record's data
  (tmp_path / "flip.tfrecord").write_bytes(bytes(data))
  assert record_check.check_tfrecord_files([path]) == 2  # headers intact
  with pytest.raises(PanopticDataError,
                     match=r"flip.tfrecord: record #1 fails its data checksum"
                     r" \(record at byte offset 116\)"):
    record_check.check_tfrecord_files([path], full=True)
