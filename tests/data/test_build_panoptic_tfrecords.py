"""The converter command: flags, parallel workers, interruption and resume."""
import filecmp
import os

import pytest

from kmax_tf.data import build_panoptic_tfrecords
from kmax_tf.data import item_serializer


def test_command_line(tmp_path, coco_root, capsys):
  output_dir = str(tmp_path / "coco")
  status = build_panoptic_tfrecords.main([
      "--format=coco", f"--root={coco_root}",
      "--splits=val", f"--output_dir={output_dir}", "--num_shards=2",
      "--num_workers=1", "--noprogress"])
  assert status == 0
  assert "val: 2 shard(s)" in capsys.readouterr().out
  assert sorted(os.listdir(output_dir)) == [
      "dataset_descriptor.json", "val-00000-of-00002.tfrecord",
      "val-00001-of-00002.tfrecord"]


def test_help(capsys):
  assert build_panoptic_tfrecords.main(["--help"]) == 0
  out = capsys.readouterr().out
  assert "--format=custom" in out and "--label_divisor" in out


def test_command_line_errors(tmp_path, capsys):
  assert build_panoptic_tfrecords.main([
      "--format=kitti",
      f"--output_dir={tmp_path}"]) == 2
  assert "--format" in capsys.readouterr().err
  assert build_panoptic_tfrecords.main([
      "--format=custom",
      f"--output_dir={tmp_path}"]) == 1
  assert "--dataset_name" in capsys.readouterr().err
  assert build_panoptic_tfrecords.main([
      "--format=coco", f"--root={tmp_path}",
      "--splits=val", f"--output_dir={tmp_path}"]) == 1
  assert "panoptic_val2017.json does not exist" in capsys.readouterr().err


def test_parallel_workers_write_the_same_shards(tmp_path, coco_root,
                                                coco_records):
  """Two spawned worker processes give byte-identical shards."""
  written = build_panoptic_tfrecords.build_panoptic_tfrecords(
      "coco", str(tmp_path), root=coco_root, splits=["val"], num_shards=4,
      num_workers=2, show_progress=False)
  for path in written["val"]:
    assert filecmp.cmp(path, os.path.join(coco_records,
                                          os.path.basename(path)),
                       shallow=False), path


def test_interrupted_run_leaves_no_partial_shard_and_resumes(
    tmp_path, coco_root, coco_records, monkeypatch):
  calls = {"count": 0}
  serialize = item_serializer.serialize_item

  def failing(item, encoder):
    calls["count"] += 1
    if calls["count"] == 7:  # inside the second of four shards of 4 images
      raise KeyboardInterrupt
    return serialize(item, encoder)

  monkeypatch.setattr(item_serializer, "serialize_item", failing)
  with pytest.raises(KeyboardInterrupt):
    build_panoptic_tfrecords.build_panoptic_tfrecords(
        "coco", str(tmp_path), root=coco_root, splits=["val"], num_shards=4,
        num_workers=1, show_progress=False)
  # Only the finished shard exists; no temporary or partial file remains.
  assert os.listdir(tmp_path) == ["val-00000-of-00004.tfrecord"]
  finished = tmp_path / "val-00000-of-00004.tfrecord"
  mtime = finished.stat().st_mtime_ns

  monkeypatch.setattr(item_serializer, "serialize_item", serialize)
  build_panoptic_tfrecords.build_panoptic_tfrecords(
      "coco", str(tmp_path), root=coco_root, splits=["val"], num_shards=4,
      num_workers=1, resume=True, show_progress=False)
  assert finished.stat().st_mtime_ns == mtime  # kept, not rewritten
  for name in sorted(os.listdir(coco_records)):
    assert filecmp.cmp(tmp_path / name, os.path.join(coco_records, name),
                       shallow=False), name


def test_stale_temporary_files_are_removed(tmp_path, coco_root):
  stale = tmp_path / ".val-00000-of-00001.tfrecord.1234.tmp"
  stale.write_bytes(b"half a shard")
  build_panoptic_tfrecords.build_panoptic_tfrecords(
      "coco", str(tmp_path), root=coco_root, splits=["val"], num_shards=1,
      num_workers=1, show_progress=False)
  assert not stale.exists()
