"""Integrity checks of TFRecord files, naming the file at fault.

TensorFlow's record reader reports corruption as "corrupted record at
<offset>" without the file. These checks walk the record framing (8-byte
length, masked CRC-32C of the length, data, masked CRC-32C of the data) and
raise PanopticDataError with the file and offset:
  * headers (cheap, the input pipeline's default): every length field and its
    CRC, and that the records end exactly at the end of the file (truncated
    copies, interrupted writes, files that are not TFRecords);
  * full (reads every byte, through TensorFlow's reader): also the data CRCs.
"""

import struct
from typing import Iterable, List, Optional

import tensorflow as tf

from kmax_tf.data.panoptic_data_error import PanopticDataError

_CRC32C_POLY = 0x82F63B78
_MASK_DELTA = 0xA282EAD8


def _crc32c_table() -> List[int]:
  table = []
  for byte in range(256):
    crc = byte
    for _ in range(8):
      crc = (crc >> 1) ^ (_CRC32C_POLY if crc & 1 else 0)
    table.append(crc)
  return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
  """CRC-32C (Castagnoli) of `data`; meant for short inputs (headers)."""
  crc = 0xFFFFFFFF
  for byte in data:
    crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
  """The masked CRC TFRecord files store."""
  crc = crc32c(data)
  return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def _corrupt(path: str, offset: Optional[int], what: str) -> PanopticDataError:
  where = f" (record at byte offset {offset})" if offset is not None else ""
  return PanopticDataError(
      f"Corrupt TFRecord file {path}: {what}{where}. Re-create it with "
      "python -m kmax_tf.data.build_panoptic_tfrecords or copy it again.")


def record_offsets(path: str) -> List[int]:
  """Walks the record framing of one file; returns each record's offset."""
  size = tf.io.gfile.stat(path).length
  offsets = []
  offset = 0
  with tf.io.gfile.GFile(path, "rb") as f:
    while offset < size:
      header = f.read(12)
      if len(header) < 12:
        raise _corrupt(path, offset, "truncated record header")
      length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
      if masked_crc32c(length_bytes) != length_crc:
        raise _corrupt(path, offset, "record length fails its checksum")
      length = struct.unpack("<Q", length_bytes)[0]
      end = offset + 12 + length + 4
      if end > size:
        raise _corrupt(path, offset,
                       f"record of {length} bytes runs past the end of the "
                       f"file ({size} bytes): the file is truncated")
      f.seek(end)
      offsets.append(offset)
      offset = end
  return offsets


def check_record_headers(path: str) -> int:
  """Checks the record framing of one file; returns its number of records."""
  return len(record_offsets(path))


def check_record_data(path: str) -> int:
  """Reads every record of one file with TensorFlow; returns the count."""
  offsets = record_offsets(path)
  count = 0
  try:
    for _ in tf.data.TFRecordDataset(path):
      count += 1
  except tf.errors.DataLossError:
    raise _corrupt(path, offsets[count] if count < len(offsets) else None,
                   f"record #{count} fails its data checksum") from None
  return count


def check_tfrecord_files(paths: Iterable[str], full: bool = False) -> int:
  """Checks each file (headers, plus data CRCs when `full`); total records."""
  total = 0
  for path in paths:
    total += check_record_data(path) if full else check_record_headers(path)
  return total
