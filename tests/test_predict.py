"""The inference CLI on a real COCO photo, and its errors on bad inputs."""
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

import kmax_tf
from kmax_tf import predict
from kmax_tf.evaluation import panoptic_png
from kmax_tf.testing import deeplab2_checkpoint_writer as writer
from kmax_tf.testing import deeplab2_fixtures as fx
from kmax_tf.testing import parity_models

PHOTO = "000000397133.jpg"  # the parity-fixture photo


def _config_args():
  path = os.path.join(fx.fixtures_dir(), "deeplab2_configs", parity_models.FIXTURE_CONFIGS["coco_r50"])
  args = [f"--config_file={path}"]
  for split in ("train_dataset_options", "eval_dataset_options"):
    for field in ("crop_size", "min_resize_value", "max_resize_value"):
      args.append(f"--config_override={split}.{field}=257,257")
  return args


def _run(args, cwd):
  return subprocess.run([sys.executable, "-m", "kmax_tf.predict"] + args, cwd=cwd,
                        capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
  return writer.write_checkpoint("coco_r50", str(tmp_path_factory.mktemp("ck") / "ckpt"))


def test_cli_writes_overlay_panoptic_png_and_json(checkpoint, tmp_path):
  photo = os.path.join(fx.fixtures_dir(), "coco_val2017_16", "val2017", PHOTO)
  result = _run(_config_args() + [f"--checkpoint={checkpoint}", f"--input={photo}",
                                  f"--output_dir={tmp_path}"], cwd=tmp_path)
  assert result.returncode == 0, result.stderr[-3000:]
  stem = PHOTO[:-4]
  width, height = Image.open(photo).size
  overlay = np.asarray(Image.open(tmp_path / f"{stem}_overlay.png"))
  assert overlay.shape == (height, width, 3)
  ids = panoptic_png.read_segment_ids(str(tmp_path / f"{stem}_panoptic.png"))
  assert ids.shape == (height, width)
  with open(tmp_path / f"{stem}.json") as f:
    content = json.load(f)
  (annotation,) = content["annotations"]
  segments = annotation["segments_info"]
  assert annotation["file_name"] == f"{stem}_panoptic.png"
  # Every non-zero id of the PNG is listed, with its pixel count as area.
  assert sorted(s["id"] for s in segments) == sorted(set(np.unique(ids)) - {0})
  coco_ids = {c["id"] for c in content["categories"]}
  for s in segments:
    assert s["area"] == int(np.sum(ids == s["id"]))
    assert s["category_id"] in coco_ids
    assert 0.0 <= s["score"] <= 1.0


def test_cli_unreadable_image_is_named(checkpoint, tmp_path):
  bad = tmp_path / "broken.jpg"
  bad.write_bytes(b"this is not a jpeg")
  result = _run(_config_args() + [f"--checkpoint={checkpoint}", f"--input={bad}",
                                  f"--output_dir={tmp_path / 'out'}"], cwd=tmp_path)
  assert result.returncode == 1
  assert f"Cannot read image {bad}" in result.stderr


def test_missing_input_and_empty_directory(tmp_path):
  with pytest.raises(predict.PredictError, match="does not exist"):
    predict.list_images(str(tmp_path / "nope.jpg"))
  with pytest.raises(predict.PredictError, match="No images"):
    predict.list_images(str(tmp_path))


def test_missing_checkpoint_file_is_clear(tmp_path):
  from kmax_tf.checkpoints import deeplab2_checkpoint_reader as reader
  with pytest.raises(FileNotFoundError, match=r"expected the file .*ckpt-9\.index"):
    reader.resolve_checkpoint_path(str(tmp_path / "ckpt-9"))


def test_config_with_wrong_class_count_is_rejected():
  config = parity_models.fixture_config("coco_r50", 129)
  config.model_options.max_deeplab.auxiliary_semantic_head.output_channels = 80
  with pytest.raises(ValueError, match="output_channels is 80 but dataset 'coco_panoptic' has 134"):
    kmax_tf.build_model(config)
