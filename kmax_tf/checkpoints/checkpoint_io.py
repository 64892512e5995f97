"""kmax_tf's own checkpoints, and loading either ours or DeepLab2's by inspection.

Ours are `tf.train.Checkpoint(model=model)` files. DeepLab2's (kMaX-DeepLab,
ECCV 2022) are recognised by their top-level keys (`encoder/`, `pixel_decoder/`,
...) and go through the explicit name mapping of deeplab2_checkpoint_reader.
"""
import os
import shutil
import tempfile

import tensorflow as tf

from kmax_tf.checkpoints import deeplab2_checkpoint_reader as dl2


def save_model_checkpoint(model, prefix: str) -> str:
  """Writes `prefix`.index/.data-* atomically (temp dir, then rename)."""
  out_dir = os.path.dirname(os.path.abspath(prefix)) or "."
  os.makedirs(out_dir, exist_ok=True)
  tmp_dir = tempfile.mkdtemp(prefix=".tmp_ckpt_", dir=out_dir)
  try:
    tmp_prefix = os.path.join(tmp_dir, os.path.basename(prefix))
    written = tf.train.Checkpoint(model=model).write(tmp_prefix)
    for name in os.listdir(tmp_dir):
      os.replace(os.path.join(tmp_dir, name), os.path.join(out_dir, name))
  finally:
    shutil.rmtree(tmp_dir, ignore_errors=True)
  return os.path.join(out_dir, os.path.basename(written))


def is_deeplab2_checkpoint(path: str) -> bool:
  shape_map = tf.train.load_checkpoint(path).get_variable_to_shape_map()
  roots = {k.split("/", 1)[0] for k in shape_map}
  return bool(roots & set(dl2.KMAX_ROOTS)) or "model" not in roots


def load_checkpoint(model, path: str, skip_class_layers: bool = False):
  """Loads a kmax_tf or DeepLab2 checkpoint (prefix or directory) into a built model.

  Returns a short description of what was loaded. Any mismatch is an error.
  """
  path = dl2.resolve_checkpoint_path(path)
  if is_deeplab2_checkpoint(path):
    report = dl2.load_deeplab2_checkpoint(model.deeplab2_variable_map(), path,
                                          skip_class_layers=skip_class_layers)
    return f"DeepLab2 {report.layout} checkpoint {path}: {report.num_assigned} variables"
  status = tf.train.Checkpoint(model=model).read(path)
  try:
    status.assert_existing_objects_matched()
    status.assert_consumed()
  except AssertionError as e:
    raise dl2.CheckpointMismatchError(
        f"kmax_tf checkpoint {path} does not match the model built from the config: {e}") from e
  return f"kmax_tf checkpoint {path}"
