"""One conversion item -> serialized tf.train.Example, without TensorFlow.

Converter worker processes run this; it imports only numpy, PIL and the
TensorFlow-free parts of kmax_tf.data, so workers start in a fraction of a
second (TensorFlow is imported only to read non-local paths, e.g. gs://).
"""

import io
from typing import Optional, Tuple

from PIL import Image

from kmax_tf.data import file_access
from kmax_tf.data import tfrecord_format
from kmax_tf.data.conversion_item import ConversionItem
from kmax_tf.data.panoptic_data_error import PanopticDataError
from kmax_tf.data.panoptic_label_encoder import PanopticLabelEncoder


def rgb_image_bytes(path: str) -> Tuple[bytes, str, int, int]:
  """Returns (bytes, format, height, width) of an image TF decodes to RGB.

  JPEG and PNG files in RGB or grey are stored unchanged (tf.io.decode_image
  with channels=3 reads both); other modes (CMYK, palette, ...) and formats
  are re-encoded as RGB (JPEG at quality 95, or lossless PNG), as DeepLab2
  re-encodes non-RGB images. The size is that of the stored pixels, without
  EXIF rotation, which is what tf.io.decode_image returns.
  """
  data = file_access.read_bytes(path)
  try:
    image = Image.open(io.BytesIO(data))
  except OSError as e:
    raise PanopticDataError(f"{path} is not a readable image: {e}") from None
  with image:
    width, height = image.size
    file_format = {"JPEG": "jpeg", "PNG": "png"}.get(image.format)
    if file_format is None or image.mode not in ("RGB", "L"):
      file_format = file_format or "png"
      buffer = io.BytesIO()
      save_kwargs = {"quality": 95} if file_format == "jpeg" else {}
      image.convert("RGB").save(buffer, format=file_format.upper(),
                                **save_kwargs)
      data = buffer.getvalue()
  return data, file_format, height, width


def serialize_item(item: ConversionItem,
                   encoder: Optional[PanopticLabelEncoder]) -> bytes:
  """The serialized (deterministic) tf.train.Example of one item."""
  image_data, image_format, height, width = rgb_image_bytes(item.image_path)
  label = None
  if item.label_path is not None and encoder is not None:
    segment_ids = PanopticLabelEncoder.read_segment_ids(
        file_access.read_bytes(item.label_path), source=item.label_path)
    if segment_ids.shape != (height, width):
      raise PanopticDataError(
          f"{item.label_path}: annotation size {segment_ids.shape} differs "
          f"from the size of image {item.image_path} {(height, width)}")
    label = encoder.encode(segment_ids, item.segments or (),
                           source=item.label_path)
  return tfrecord_format.encode_example(image_data, image_format, item.name,
                                        height, width, label)


_WORKER_ENCODER = None


def init_worker(encoder: Optional[PanopticLabelEncoder]) -> None:
  """Pool initializer: the encoder every task of this worker uses."""
  global _WORKER_ENCODER
  _WORKER_ENCODER = encoder


def serialize_in_worker(item: ConversionItem) -> bytes:
  return serialize_item(item, _WORKER_ENCODER)
