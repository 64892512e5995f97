"""Writes conversion items into sharded TFRecord files, in parallel.

Shards are named `{split}-{index:05d}-of-{count:05d}.tfrecord` (DeepLab2's
names, so file patterns such as "train*.tfrecord" keep working). Worker
processes (started with "spawn", never forked from a process that may hold
TensorFlow's runtime threads) decode images and annotations and serialize the
examples (kmax_tf.data.item_serializer, TensorFlow-free); this process writes
them in order. Each shard is written to a hidden temporary file in the output
directory and renamed when complete, so an interrupted conversion never
leaves a partial shard under a real shard name; re-running with resume=True
keeps the finished shards. Output is deterministic: the same inputs give
byte-identical shards whatever the number of workers.
"""

import multiprocessing
import os
from typing import Iterator, List, Optional, Sequence

import numpy as np
import tensorflow as tf
import tqdm

from kmax_tf.data import item_serializer
from kmax_tf.data.conversion_item import ConversionItem
from kmax_tf.data.panoptic_data_error import PanopticDataError
from kmax_tf.data.panoptic_label_encoder import PanopticLabelEncoder

# Automatic shard count: about this many images per shard, at most
# _MAX_AUTO_SHARDS shards (DeepLab2 uses 1000 shards for COCO).
_IMAGES_PER_SHARD = 128
_MAX_AUTO_SHARDS = 1000
_TEMP_PREFIX = "."
_TEMP_SUFFIX = ".tmp"
_CHUNK_SIZE = 4


def shard_filename(split: str, index: int, num_shards: int) -> str:
  """'<split>-<index>-of-<num_shards>.tfrecord', numbers 5-digit zero-padded.

  Args:
    split: record prefix, usually the split name.
    index: 0-based shard index.
    num_shards: shards of the split.
  """
  return f"{split}-{index:05d}-of-{num_shards:05d}.tfrecord"


def auto_num_shards(num_images: int) -> int:
  """About 128 images per shard, between 1 and 1000 shards.

  Args:
    num_images: images in the split.
  """
  return int(min(_MAX_AUTO_SHARDS,
                 max(1, -(-num_images // _IMAGES_PER_SHARD))))


def _temp_path(final_path: str) -> str:
  directory, name = os.path.split(final_path)
  return os.path.join(directory,
                      f"{_TEMP_PREFIX}{name}.{os.getpid()}{_TEMP_SUFFIX}")


def _write_shard(final_path: str, records: Iterator[bytes],
                 count: int) -> None:
  """Writes `count` records through a temporary file, then renames it."""
  temp_path = _temp_path(final_path)
  try:
    with tf.io.TFRecordWriter(temp_path) as writer:
      for _ in range(count):
        writer.write(next(records))
    tf.io.gfile.rename(temp_path, final_path, overwrite=True)
  finally:
    if tf.io.gfile.exists(temp_path):
      tf.io.gfile.remove(temp_path)


def _remove_stale_temp_files(output_dir: str, split: str) -> None:
  pattern = os.path.join(
      output_dir, f"{_TEMP_PREFIX}{split}-*-of-*.tfrecord.*{_TEMP_SUFFIX}")
  for path in tf.io.gfile.glob(pattern):
    tf.io.gfile.remove(path)


def write_tfrecord_shards(items: Sequence[ConversionItem],
                          encoder: Optional[PanopticLabelEncoder],
                          output_dir: str, split: str, num_shards: int = 0,
                          num_workers: int = 0, resume: bool = False,
                          show_progress: bool = True) -> List[str]:
  """Converts `items` into `num_shards` TFRecord files in `output_dir`.

  Args:
    items: Examples in output order; shard i holds a contiguous block.
    encoder: Label encoder, or None to write no labels.
    output_dir: Destination directory (created if needed; any tf.io.gfile
      path).
    split: Shard name prefix, e.g. "train".
    num_shards: Number of shards; 0 picks about 128 images per shard (at most
      1000). Never more than len(items), so no shard is empty.
    num_workers: Worker processes; 0 uses one per CPU; 1 converts in this
      process.
    resume: Keep shards that already exist under their final name.
    show_progress: Show a tqdm progress bar (images written).

  Returns:
    The shard paths, in order.
  """
  if not items:
    raise PanopticDataError(f"no images to convert for split {split!r}")
  num_shards = min(num_shards or auto_num_shards(len(items)), len(items))
  tf.io.gfile.makedirs(output_dir)
  _remove_stale_temp_files(output_dir, split)
  bounds = np.linspace(0, len(items), num_shards + 1).round().astype(int)
  paths = [os.path.join(output_dir, shard_filename(split, i, num_shards))
           for i in range(num_shards)]
  todo = [i for i in range(num_shards)
          if not (resume and tf.io.gfile.exists(paths[i]))]
  todo_items = [item for i in todo for item in items[bounds[i]:bounds[i + 1]]]
  num_workers = num_workers or (os.cpu_count() or 1)
  num_workers = max(1, min(num_workers, len(todo_items)))
  with tqdm.tqdm(total=len(todo_items), unit="img",
                 desc=f"{split} -> {output_dir}",
                 disable=not show_progress) as progress:

    def write_all(records: Iterator[bytes]) -> None:
      def counted():
        for record in records:
          progress.update(1)
          yield record
      stream = counted()
      for i in todo:
        _write_shard(paths[i], stream, int(bounds[i + 1] - bounds[i]))

    if num_workers == 1:
      write_all(item_serializer.serialize_item(item, encoder)
                for item in todo_items)
    else:
      context = multiprocessing.get_context("spawn")
      with context.Pool(num_workers, initializer=item_serializer.init_worker,
                        initargs=(encoder,)) as pool:
        write_all(pool.imap(item_serializer.serialize_in_worker, todo_items,
                            chunksize=_CHUNK_SIZE))
  return paths
