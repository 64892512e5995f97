r"""Converts a panoptic dataset into sharded TFRecords for kmax_tf (and DeepLab2).

  kmax-build-tfrecords --format=coco \
      --root=/data/coco --output_dir=data/coco
  kmax-build-tfrecords --format=cityscapes \
      --root=/data/cityscapes --output_dir=data/cityscapes
  kmax-build-tfrecords --format=ade20k \
      --root=/data/ADEChallengeData2016 --output_dir=data/ade20k
  kmax-build-tfrecords --format=custom \
      --dataset_name=my_dataset --splits=train \
      --image_dir=/data/mine/images \
      --panoptic_json=/data/mine/panoptic_train.json \
      --panoptic_dir=/data/mine/panoptic_train --output_dir=data/mine

Each split becomes `{prefix}-{i:05d}-of-{n:05d}.tfrecord` shards (prefix: the
split name; "{split}_fine" for Cityscapes) in DeepLab2's record format
(kmax_tf.data.tfrecord_format), plus `dataset_descriptor.json`: the label
space, which the input pipeline reads (for --format=custom it is how the new
dataset becomes known). Shards are written in parallel worker processes,
through temporary files renamed on completion; --resume keeps finished shards
of an interrupted run.
"""

import os
import sys
from typing import Dict, List, Optional, Sequence

from absl import flags
from absl import logging

from kmax_tf import cli
from kmax_tf.data import ade20k_panoptic_converter
from kmax_tf.data import cityscapes_panoptic_converter
from kmax_tf.data import coco_panoptic_converter
from kmax_tf.data import custom_panoptic_converter
from kmax_tf.data.dataset_descriptor import DatasetDescriptor
from kmax_tf.data.panoptic_data_error import PanopticDataError
from kmax_tf.data.panoptic_label_encoder import PanopticLabelEncoder

# Converter worker processes ("spawn") re-import this module when it is run
# with `python -m`; modules that import TensorFlow (descriptor_json,
# shard_writer) are therefore imported inside the functions that need them.

FORMATS = ("coco", "cityscapes", "ade20k", "custom")
_BUILTIN = {
    "coco": coco_panoptic_converter,
    "cityscapes": cityscapes_panoptic_converter,
    "ade20k": ade20k_panoptic_converter,
}

_FLAGS = flags.FlagValues()
flags.DEFINE_enum("format", None, FORMATS, "Source annotation format.",
                  flag_values=_FLAGS)
flags.DEFINE_string("output_dir", None, "Folder of the TFRecord shards.",
                    flag_values=_FLAGS)
flags.DEFINE_string("root", None,
                    "Dataset root folder in its usual layout (see the "
                    "kmax_tf.data.*_panoptic_converter docstrings).",
                    flag_values=_FLAGS)
flags.DEFINE_list("splits", None,
                  "Splits to convert (default: train,val).",
                  flag_values=_FLAGS)
flags.DEFINE_string("image_dir", None,
                    "Image folder (overrides the layout; one split only).",
                    flag_values=_FLAGS)
flags.DEFINE_string("panoptic_json", None,
                    "COCO-panoptic JSON (overrides the layout; one split "
                    "only).", flag_values=_FLAGS)
flags.DEFINE_string("panoptic_dir", None,
                    "Folder of the panoptic PNGs (overrides the layout; one "
                    "split only).", flag_values=_FLAGS)
flags.DEFINE_string("dataset_name", None,
                    "--format=custom: name of the dataset, as configs give it "
                    "in dataset_options.dataset.", flag_values=_FLAGS)
flags.DEFINE_integer("label_divisor",
                     custom_panoptic_converter.DEFAULT_LABEL_DIVISOR,
                     "--format=custom: panoptic id = class * divisor + "
                     "instance; must exceed the instances of one class in "
                     "one image (twice that with panoptic copy-paste).",
                     flag_values=_FLAGS)
flags.DEFINE_integer("num_shards", 0,
                     "Shards per split; 0: about 128 images per shard.",
                     flag_values=_FLAGS)
flags.DEFINE_integer("num_workers", 0,
                     "Worker processes; 0: one per CPU.", flag_values=_FLAGS)
flags.DEFINE_bool("resume", False,
                  "Keep shards a previous (interrupted) run completed.",
                  flag_values=_FLAGS)
flags.DEFINE_bool("treat_crowd_as_ignore", True,
                  "Crowd regions become void (DeepLab2's default); otherwise "
                  "they keep their class with instance id 0.",
                  flag_values=_FLAGS)
flags.DEFINE_bool("progress", True, "Show a progress bar.",
                  flag_values=_FLAGS)


def _merge_descriptor(output_dir: str,
                      descriptor: DatasetDescriptor) -> DatasetDescriptor:
  """Adds the split sizes of an existing descriptor file in output_dir."""
  from kmax_tf.data import descriptor_json  # pylint: disable=g-import-not-at-top
  from kmax_tf.data import file_access  # pylint: disable=g-import-not-at-top
  path = os.path.join(output_dir, descriptor_json.DESCRIPTOR_FILENAME)
  if not file_access.exists(path):
    return descriptor
  existing = descriptor_json.read_descriptor(path)
  mine = descriptor_json.descriptor_to_dict(descriptor)
  theirs = descriptor_json.descriptor_to_dict(existing)
  mine.pop("splits_to_sizes")
  sizes = theirs.pop("splits_to_sizes")
  if mine != theirs:
    raise PanopticDataError(
        f"{path} describes another label space (dataset "
        f"{existing.name!r}, {existing.num_classes} classes) than the one "
        f"being converted ({descriptor.name!r}, {descriptor.num_classes} "
        "classes); use another --output_dir")
  sizes.update(descriptor.splits_to_sizes)
  return descriptor_json.descriptor_from_dict(
      dict(mine, splits_to_sizes=sizes), source=path)


def build_panoptic_tfrecords(
    data_format: str, output_dir: str, root: Optional[str] = None,
    splits: Optional[Sequence[str]] = None, image_dir: Optional[str] = None,
    panoptic_json: Optional[str] = None, panoptic_dir: Optional[str] = None,
    dataset_name: Optional[str] = None,
    label_divisor: int = custom_panoptic_converter.DEFAULT_LABEL_DIVISOR,
    num_shards: int = 0, num_workers: int = 0, resume: bool = False,
    treat_crowd_as_ignore: bool = True,
    show_progress: bool = True) -> Dict[str, List[str]]:
  """Converts the splits of a dataset; returns {split: shard paths}.

  Arguments mirror the command-line flags (see the module docstring).

  Args:
    data_format: 'coco', 'cityscapes', 'ade20k' or 'custom'.
    output_dir: folder of the TFRecord shards (and dataset_descriptor.json).
    root: dataset root folder in its usual layout (see the
      kmax_tf.data.*_panoptic_converter docstrings).
    splits: splits to convert; None: the format's defaults.
    image_dir: image folder (overrides the layout; one split only).
    panoptic_json: COCO-panoptic JSON (overrides the layout; one split only).
    panoptic_dir: folder of the panoptic PNGs (overrides the layout; one split
      only).
    dataset_name: 'custom' only: the name configs give in
      dataset_options.dataset.
    label_divisor: 'custom' only: panoptic id = class * label_divisor +
      instance; must exceed the instances of one class in an image.
    num_shards: shards per split; 0: about 128 images per shard.
    num_workers: worker processes; 0: one per CPU.
    resume: keep shards a previous (interrupted) run completed.
    treat_crowd_as_ignore: crowd regions become void; otherwise they keep
      their class with instance id 0.
    show_progress: show a progress bar.

  Raises:
    PanopticDataError: missing or inconsistent inputs.
  """
  from kmax_tf.data import descriptor_json  # pylint: disable=g-import-not-at-top
  from kmax_tf.data import shard_writer  # pylint: disable=g-import-not-at-top
  if data_format not in FORMATS:
    raise PanopticDataError(f"--format must be one of {FORMATS}, got "
                            f"{data_format!r}")
  splits = list(splits or (_BUILTIN[data_format].DEFAULT_SPLITS
                           if data_format in _BUILTIN
                           else custom_panoptic_converter.DEFAULT_SPLITS))
  overrides = [image_dir, panoptic_json, panoptic_dir]
  if any(overrides) and len(splits) != 1:
    raise PanopticDataError(
        "--image_dir/--panoptic_json/--panoptic_dir describe one split; "
        f"pass exactly one with --splits (got {splits})")
  if data_format == "custom" and not dataset_name:
    raise PanopticDataError("--format=custom needs --dataset_name")
  if data_format != "custom" and not root and not all(overrides):
    raise PanopticDataError(
        f"--format={data_format} needs --root (or all of --image_dir, "
        "--panoptic_json and --panoptic_dir)")
  written = {}
  for split in splits:
    if data_format == "custom":
      items, descriptor, mapping = custom_panoptic_converter.conversion_items(
          root, split, dataset_name, image_dir, panoptic_json, panoptic_dir,
          label_divisor)
      prefix = split
    else:
      module = _BUILTIN[data_format]
      items, descriptor, mapping = module.conversion_items(
          root or "", split, image_dir, panoptic_json, panoptic_dir)
      prefix = getattr(module, "record_prefix", lambda s: s)(split)
    encoder = PanopticLabelEncoder(
        mapping, descriptor.class_has_instances_list, descriptor.ignore_label,
        descriptor.panoptic_label_divisor,
        treat_crowd_as_ignore=treat_crowd_as_ignore)
    logging.info("Converting %d images of split %s into %s", len(items),
                 split, output_dir)
    written[split] = shard_writer.write_tfrecord_shards(
        items, encoder, output_dir, prefix, num_shards=num_shards,
        num_workers=num_workers, resume=resume, show_progress=show_progress)
    merged = _merge_descriptor(output_dir, descriptor)
    descriptor_json.write_descriptor(merged, output_dir)
  return written


def _build_command(f: flags.FlagValues) -> int:
  if not f.format or not f.output_dir:
    raise cli.UsageError("--format and --output_dir are required")
  written = build_panoptic_tfrecords(
      f.format, f.output_dir, root=f.root, splits=f.splits, image_dir=f.image_dir,
      panoptic_json=f.panoptic_json, panoptic_dir=f.panoptic_dir,
      dataset_name=f.dataset_name, label_divisor=f.label_divisor,
      num_shards=f.num_shards, num_workers=f.num_workers, resume=f.resume,
      treat_crowd_as_ignore=f.treat_crowd_as_ignore, show_progress=f.progress)
  for split, paths in written.items():
    print(f"{split}: {len(paths)} shard(s) in {os.path.dirname(paths[0])}")
  return 0


main = cli.command(_FLAGS, _build_command, __doc__, input_errors=(PanopticDataError,))


if __name__ == "__main__":
  sys.exit(main())
