"""Record format: TensorFlow-free encoding equals tf.train.Example's."""
import numpy as np
import pytest
import tensorflow as tf

from kmax_tf.data import tfrecord_format


def _tf_example(image, label):
  def b(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

  def i(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
  return tf.train.Example(features=tf.train.Features(feature={
      "image/encoded": b(image), "image/filename": b(b"name"),
      "image/format": b(b"png"), "image/height": i(2), "image/width": i(3),
      "image/channels": i(3),
      "image/segmentation/class/encoded": b(label.astype("<i4").tobytes()),
      "image/segmentation/class/format": b(b"raw")}))


def test_encoding_equals_tensorflow_serialization():
  image = tf.io.encode_png(tf.zeros([2, 3, 3], tf.uint8)).numpy()
  label = np.array([[0, 1, 256], [70000, 2**31 - 1, 5]], np.int32)
  ours = tfrecord_format.encode_example(image, "png", "name", 2, 3, label)
  assert ours == _tf_example(image, label).SerializeToString(
      deterministic=True)
  assert tfrecord_format.encode_features({"x": -5}) == tf.train.Example(
      features=tf.train.Features(feature={"x": tf.train.Feature(
          int64_list=tf.train.Int64List(value=[-5]))})).SerializeToString()


def test_decode_round_trip():
  image = np.random.RandomState(0).randint(0, 255, (2, 3, 3)).astype(np.uint8)
  label = np.array([[0, 1, 256], [70000, 9, 5]], np.int32)
  record = tfrecord_format.encode_example(
      tf.io.encode_png(image).numpy(), "png", "name", 2, 3, label)
  sample = tfrecord_format.decode_example(tf.constant(record))
  np.testing.assert_array_equal(sample["image"], image)
  np.testing.assert_array_equal(sample["label"][..., 0], label)
  assert sample["image_name"].numpy() == b"name"
  assert int(sample["height"]) == 2 and int(sample["width"]) == 3
  unlabeled = tfrecord_format.decode_example(
      tf.constant(tfrecord_format.encode_example(
          tf.io.encode_png(image).numpy(), "png", "x", 2, 3)),
      with_label=False)
  assert "label" not in unlabeled


def test_invalid_inputs():
  with pytest.raises(ValueError, match="image_format"):
    tfrecord_format.encode_example(b"", "gif", "x", 1, 1)
  with pytest.raises(ValueError, match="label shape"):
    tfrecord_format.encode_example(b"", "png", "x", 2, 2,
                                   np.zeros((3, 2), np.int32))
  record = tfrecord_format.encode_features({"image/filename": b"lost"})
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match="Malformed panoptic record in file f.tfrecord, "
                     "image lost: missing image/encoded"):
    tfrecord_format.decode_example(tf.constant(record),
                                   tf.constant("f.tfrecord"))
