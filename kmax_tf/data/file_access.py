"""File reading for the converters, without importing TensorFlow for local
paths.

Converter worker processes must start fast, so local files go through the
standard library; paths with a scheme (gs://, s3://, ...) go through
tf.io.gfile, imported on first use.
"""

import glob as glob_lib
import os
from typing import List

from kmax_tf.data.panoptic_data_error import PanopticDataError


def _is_url(path: str) -> bool:
  return "://" in path


def read_bytes(path: str) -> bytes:
  """The file's content; PanopticDataError naming the path if unreadable."""
  if _is_url(path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if not tf.io.gfile.exists(path):
      raise PanopticDataError(f"{path} does not exist")
    with tf.io.gfile.GFile(path, "rb") as f:
      return f.read()
  try:
    with open(path, "rb") as f:
      return f.read()
  except FileNotFoundError:
    raise PanopticDataError(f"{path} does not exist") from None
  except OSError as e:
    raise PanopticDataError(f"cannot read {path}: {e.strerror}") from None


def exists(path: str) -> bool:
  if _is_url(path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.io.gfile.exists(path)
  return os.path.exists(path)


def glob(pattern: str) -> List[str]:
  if _is_url(pattern):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return sorted(tf.io.gfile.glob(pattern))
  return sorted(glob_lib.glob(pattern))
