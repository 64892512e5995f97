"""The TFRecord format of panoptic segmentation examples (DeepLab2's format).

One tf.train.Example per image, with the features DeepLab2's converters write
and its SegmentationDecoder reads, so records are interchangeable between the
two code bases:

  image/encoded                     bytes  the encoded image file (JPEG/PNG)
  image/filename                    bytes  file stem, e.g. "000000037777"
  image/format                      bytes  "jpeg" or "png"
  image/height, image/width         int64  image size
  image/channels                    int64  3
  image/segmentation/class/encoded  bytes  int32 little-endian panoptic ids,
                                           H*W*4 bytes in C order
  image/segmentation/class/format   bytes  "raw"

A panoptic id is `class_id * label_divisor + instance_id` with training class
ids (Kirillov et al., "Panoptic Segmentation", CVPR 2019).

encode_example writes the tf.train.Example bytes without TensorFlow (the
protobuf wire format of these few features, map keys sorted, i.e. what
SerializeToString(deterministic=True) gives), so converter worker processes
start without importing TensorFlow; this module imports it only when decoding.
"""

from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np

KEY_ENCODED_IMAGE = "image/encoded"
KEY_IMAGE_FILENAME = "image/filename"
KEY_IMAGE_FORMAT = "image/format"
KEY_IMAGE_HEIGHT = "image/height"
KEY_IMAGE_WIDTH = "image/width"
KEY_IMAGE_CHANNELS = "image/channels"
KEY_ENCODED_LABEL = "image/segmentation/class/encoded"
KEY_LABEL_FORMAT = "image/segmentation/class/format"

LABEL_FORMAT = "raw"
IMAGE_FORMATS = ("jpeg", "png")

# Keys of the decoded sample dict (DeepLab2's decoder names).
IMAGE = "image"
IMAGE_NAME = "image_name"
LABEL = "label"
HEIGHT = "height"
WIDTH = "width"


def _varint(value: int) -> bytes:
  value &= (1 << 64) - 1  # negative int64: ten-byte two's complement
  out = bytearray()
  while True:
    byte = value & 0x7F
    value >>= 7
    if value:
      out.append(byte | 0x80)
    else:
      out.append(byte)
      return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
  """A length-delimited protobuf field."""
  return _varint(number << 3 | 2) + _varint(len(payload)) + payload


FeatureValue = Union[bytes, int, Sequence[int]]


def encode_features(features: Mapping[str, FeatureValue]) -> bytes:
  """Serialized tf.train.Example of bytes / int64 features, keys sorted.

  A bytes value becomes a one-element BytesList, an int or a sequence of ints
  an Int64List (packed).
  """
  entries = []
  for key in sorted(features):
    value = features[key]
    if isinstance(value, bytes):
      feature = _field(1, _field(1, value))  # Feature.bytes_list
    else:
      values = [value] if isinstance(value, (int, np.integer)) else value
      packed = b"".join(_varint(int(v)) for v in values)
      feature = _field(3, _field(1, packed))  # Feature.int64_list
    entries.append(_field(1, _field(1, key.encode("utf-8")) +
                          _field(2, feature)))
  return _field(1, b"".join(entries))  # Example.features


def encode_example(image_data: bytes, image_format: str, filename: str,
                   height: int, width: int,
                   label: Optional[np.ndarray] = None) -> bytes:
  """Serialized tf.train.Example of one image and its panoptic label.

  Args:
    image_data: Encoded 3-channel image file bytes.
    image_format: "jpeg" or "png".
    filename: Image name stored as image/filename (the file stem).
    height: Image height in pixels.
    width: Image width in pixels.
    label: [height, width] integer panoptic ids, or None for splits without
      ground truth (no label features are written then).

  Returns:
    The example bytes.
  """
  if image_format not in IMAGE_FORMATS:
    raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, "
                     f"got {image_format!r}")
  features = {
      KEY_ENCODED_IMAGE: bytes(image_data),
      KEY_IMAGE_FILENAME: filename.encode("utf-8"),
      KEY_IMAGE_FORMAT: image_format.encode("utf-8"),
      KEY_IMAGE_HEIGHT: int(height),
      KEY_IMAGE_WIDTH: int(width),
      KEY_IMAGE_CHANNELS: 3,
  }
  if label is not None:
    label = np.asarray(label)
    if label.shape != (height, width):
      raise ValueError(f"{filename}: label shape {label.shape} != image shape "
                       f"{(height, width)}")
    features[KEY_ENCODED_LABEL] = np.ascontiguousarray(
        label, dtype="<i4").tobytes()
    features[KEY_LABEL_FORMAT] = LABEL_FORMAT.encode("utf-8")
  return encode_features(features)


def make_example(image_data: bytes, image_format: str, filename: str,
                 height: int, width: int, label: Optional[np.ndarray] = None):
  """Like encode_example (same arguments), as a tf.train.Example message."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.train.Example.FromString(encode_example(
      image_data, image_format, filename, height, width, label))


def feature_spec(with_label: bool = True) -> Dict[str, object]:
  """Parsing spec of the example features the input pipeline reads.

  Every feature gets a default so that a record lacking one parses and the
  pipeline can report the missing feature together with the file it came from
  (see decode_example).

  Args:
    with_label: include the panoptic label features.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  spec = {
      KEY_ENCODED_IMAGE: tf.io.FixedLenFeature((), tf.string, b""),
      KEY_IMAGE_FILENAME: tf.io.FixedLenFeature((), tf.string, b""),
      KEY_IMAGE_HEIGHT: tf.io.FixedLenFeature((), tf.int64, -1),
      KEY_IMAGE_WIDTH: tf.io.FixedLenFeature((), tf.int64, -1),
  }
  if with_label:
    spec[KEY_ENCODED_LABEL] = tf.io.FixedLenFeature((), tf.string, b"")
  return spec


def decode_example(serialized, source=None,
                   with_label: bool = True) -> Dict[str, object]:
  """Decodes one serialized example into DeepLab2's raw sample dict.

  Args:
    serialized: Scalar string tensor, a serialized tf.train.Example.
    source: Optional scalar string naming where the record came from (its
      TFRecord file); it is included in the error raised for malformed records.
    with_label: Whether to decode the panoptic label.

  Returns:
    {"image": uint8 [H, W, 3] decoded with tf.io.decode_image (the decoder
     DeepLab2 uses; other JPEG decoders round differently), "image_name":
     string, "height"/"width": int32, "label": int32 [H, W, 1] (only with
     with_label)}.

  Raises:
    tf.errors.InvalidArgumentError (when run): a required feature is missing
      or the label byte size does not match height * width * 4.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if source is None:
    source = tf.constant("<unknown file>")
  parsed = tf.io.parse_single_example(serialized, feature_spec(with_label))
  height = parsed[KEY_IMAGE_HEIGHT]
  width = parsed[KEY_IMAGE_WIDTH]
  name = parsed[KEY_IMAGE_FILENAME]
  checks = [
      tf.debugging.Assert(
          tf.logical_and(tf.strings.length(parsed[KEY_ENCODED_IMAGE]) > 0,
                         tf.logical_and(height > 0, width > 0)),
          [tf.strings.join([
              "Malformed panoptic record in file ", source, ", image ", name,
              ": missing image/encoded, image/height or image/width"])]),
  ]
  if with_label:
    label_bytes = tf.cast(tf.strings.length(parsed[KEY_ENCODED_LABEL]),
                          tf.int64)
    checks.append(tf.debugging.Assert(
        tf.equal(label_bytes, height * width * 4),
        [tf.strings.join([
            "Malformed panoptic record in file ", source, ", image ", name,
            ": image/segmentation/class/encoded has ",
            tf.strings.as_string(label_bytes),
            " bytes, expected height * width * 4 = ",
            tf.strings.as_string(height * width * 4),
            " (int32 'raw' labels; re-create the records with python -m "
            "kmax_tf.data.build_panoptic_tfrecords)"])]))
  with tf.control_dependencies(checks):
    image = tf.io.decode_image(parsed[KEY_ENCODED_IMAGE], channels=3,
                               dtype=tf.uint8, expand_animations=False)
  image.set_shape([None, None, 3])
  sample = {
      IMAGE: image,
      IMAGE_NAME: name,
      HEIGHT: tf.cast(height, tf.int32),
      WIDTH: tf.cast(width, tf.int32),
  }
  if with_label:
    with tf.control_dependencies(checks):
      flat = tf.io.decode_raw(parsed[KEY_ENCODED_LABEL], out_type=tf.int32,
                              little_endian=True)
    sample[LABEL] = tf.reshape(flat, tf.stack([height, width, 1]))
  return sample
