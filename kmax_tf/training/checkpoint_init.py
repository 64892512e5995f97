"""Initial weights and resume checks of the kMaX-DeepLab trainer.

`model_options.initial_checkpoint` may be an ImageNet backbone or a full kMaX
model, in DeepLab2's layout (model-only, trainer or backbone checkpoints; read
through the explicit name map of kmax_tf.checkpoints) or in ours (any
tf.train.Checkpoint with the model under `model`: trainer checkpoints of this
package or files of kmax_tf.checkpoints.checkpoint_io). When the checkpoint
was trained for another number of classes, the class-dependent last layers
(semantic and class heads) keep their fresh initialization: fine-tuning to a
new label set is the usual reason for that, so it is logged, not an error.
Resuming from (or evaluating) a checkpoint is different: there a different
class count means the config and the checkpoint disagree, and that is an error
saying so.
"""
from typing import List, Tuple

import tensorflow as tf
from absl import logging

from kmax_tf.checkpoints import checkpoint_io
from kmax_tf.checkpoints import deeplab2_checkpoint_reader as dl2
from kmax_tf.checkpoints.deeplab2_checkpoint_reader import CheckpointMismatchError

def class_count_mismatches(model, path: str) -> List[Tuple[str, list, list]]:
  """(DeepLab2 key, model shape, checkpoint shape) of class-dependent layers that differ.

  Args:
    model: a built KMaXDeepLab.
    path: checkpoint prefix (kmax_tf or DeepLab2 layout).
  """
  reader = tf.train.load_checkpoint(path)
  shapes = reader.get_variable_to_shape_map()
  variables = checkpoint_io.class_dependent_variables(model)
  if checkpoint_io.is_kmax_tf_checkpoint(reader):
    keys = checkpoint_io.model_variable_keys(model, reader)
    stored = {k: shapes.get(keys.get(id(v), ""), None) for k, v in variables.items()}
  else:
    normalized = dl2.model_keys_of(shapes)
    stored = {k: normalized.get(k) for k in variables}
  return [(k, list(v.shape), list(stored[k])) for k, v in variables.items()
          if stored.get(k) is not None and list(stored[k]) != list(v.shape)]


def _class_counts(mismatches) -> str:
  model_shape, ckpt_shape = mismatches[0][1], mismatches[0][2]
  return f"{ckpt_shape[-1]} output channels in the checkpoint, {model_shape[-1]} in the model"


def check_same_classes(model, path: str, num_classes: int, dataset_name: str) -> None:
  """Raises CheckpointMismatchError when `path` was trained for another class count.

  Args:
    model: a built KMaXDeepLab.
    path: checkpoint prefix.
    num_classes: the config dataset's classes including void (for the message).
    dataset_name: the config's dataset (for the message).
  """
  mismatches = class_count_mismatches(model, path)
  if mismatches:
    details = "; ".join(f"{k}: checkpoint {c} vs model {m}" for k, m, c in mismatches)
    raise CheckpointMismatchError(
        f"Checkpoint {path} was trained for a different number of classes than the config's "
        f"dataset {dataset_name!r} ({num_classes} classes including void): "
        f"{_class_counts(mismatches)} ({details}). Use a --model_dir trained for this dataset, "
        "or, to fine-tune from this checkpoint, give it as model_options.initial_checkpoint "
        "with a new --model_dir (the class layers are then re-initialized).")


def initialize_from_checkpoint(model, path: str) -> str:
  """Fills `model` from an initial checkpoint; returns a one-line description.

  Class-dependent last layers are skipped (kept fresh) when the checkpoint's
  class count differs from the model's.

  Args:
    model: a built KMaXDeepLab.
    path: checkpoint file prefix or directory (DeepLab2 or kmax_tf layout).
  """
  path = dl2.resolve_checkpoint_path(path)
  mismatches = class_count_mismatches(model, path)
  skip_classes = bool(mismatches)
  if skip_classes:
    logging.warning("Initial checkpoint %s has another class count (%s): the semantic and class "
                    "last layers are not restored and start from scratch.", path,
                    _class_counts(mismatches))
  description = checkpoint_io.load_checkpoint(model, path, skip_class_layers=skip_classes)
  if skip_classes:
    description += " (class layers re-initialized)"
  return description
