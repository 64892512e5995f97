"""Reads DeepLab2 kMaX-DeepLab checkpoints into kmax_tf models, by explicit name mapping.

DeepLab2 (kMaX-DeepLab) writes two layouts:
  * model-only: `tf.train.Checkpoint(**model.checkpoint_items)`, what its export and
    evaluation restore (keys `encoder/...`, `pixel_decoder/...`, ...);
  * trainer: the same model keys plus `global_step`, `save_counter`, the two
    AdamW optimizers and their slot variables (`.OPTIMIZER_SLOT/...`).
ImageNet backbone checkpoints hold the pixel encoder alone, with or without the
`encoder/` prefix. DeepLab2's MOAT ImageNet checkpoints are name-based instead
(keys `moat/...`, no object graph); they are read through the encoder's
`imagenet_variable_map` the way DeepLab2's MOAT loader reads them: every
trainable encoder variable must be present with its shape, anything else in
the file (BN moving statistics, exponential moving averages, the
classification head, training state) is not read, and is listed in the
report's `skipped`.

Every model variable is filled exactly once from the key its component's
`deeplab2_variable_map` names; unmatched keys on either side and shape mismatches
are errors that list them, and nothing is assigned unless all checks pass.
"""
import dataclasses
import os
from typing import Dict, Iterable, Optional

import numpy as np
import tensorflow as tf

VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_TRAINER_ONLY_ROOTS = ("optimizer", "backbone_optimizer", "global_step", "save_counter",
                       "_CHECKPOINTABLE_OBJECT_GRAPH")
ENCODER_PREFIX = "encoder/"
# Last layers whose shape depends on the class count (skipped when fine-tuning
# to a dataset with a different number of classes): the final and the six
# auxiliary class heads, and the semantic last layer.
_CLASS_DEPENDENT_PARTS = ("transformer_class_head/", "semantic_last_layer/")


def is_class_dependent(key: str) -> bool:
  """Whether a DeepLab2 key belongs to a layer whose shape depends on the class count.

  Args:
    key: DeepLab2 checkpoint key without the '/.ATTRIBUTES/VARIABLE_VALUE'
      suffix, e.g. 'transformer_class_head/_conv/kernel'.
  """
  return any(key.startswith(p) or "/_" + p in key for p in _CLASS_DEPENDENT_PARTS)
_MAX_LISTED = 25


class CheckpointMismatchError(ValueError):
  """The checkpoint and the model do not correspond name for name, shape for shape."""


@dataclasses.dataclass(frozen=True)
class ImportReport:
  path: str
  layout: str  # 'model_only', 'trainer' or 'backbone'
  num_assigned: int
  global_step: Optional[int]
  skipped: tuple


def resolve_checkpoint_path(path: str) -> str:
  """Accepts a checkpoint prefix or a directory holding a `checkpoint` file.

  Args:
    path: a prefix (e.g. .../ckpt-150000, whose .index file exists) or a
      directory.

  Returns:
    The prefix (the directory's latest checkpoint).
  """
  if os.path.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest is None:
      raise FileNotFoundError(f"No checkpoint found in directory {path!r} (no 'checkpoint' index file).")
    return latest
  if not tf.io.gfile.exists(path + ".index"):
    raise FileNotFoundError(
        f"Checkpoint {path!r} not found: expected the file {path + '.index'} "
        "(pass the checkpoint prefix, e.g. .../ckpt-150000, or its directory).")
  return path


def _listing(items: Iterable[str]) -> str:
  items = sorted(items)
  shown = "\n    ".join(items[:_MAX_LISTED])
  more = f"\n    ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
  return f"{len(items)}:\n    {shown}{more}"


def model_keys_of(shape_map: Dict[str, list]) -> Dict[str, list]:
  """Returns {key without suffix: shape} of the model variables in a checkpoint.

  Args:
    shape_map: the reader's get_variable_to_shape_map(); optimizer slots and
      trainer-only roots are left out.
  """
  out = {}
  for key, shape in shape_map.items():
    if not key.endswith(VALUE_SUFFIX) or ".OPTIMIZER_SLOT" in key:
      continue
    if key.split("/", 1)[0] in _TRAINER_ONLY_ROOTS:
      continue
    out[key[: -len(VALUE_SUFFIX)]] = list(shape)
  return out


KMAX_ROOTS = ("encoder", "pixel_decoder", "transformer_decoder", "pixel_space_head",
              "transformer_mask_head", "transformer_class_head",
              "pixel_space_feature_batch_norm", "pixel_space_mask_batch_norm",
              "semantic_decoder", "semantic_head_without_last_layer", "semantic_last_layer")


MOAT_IMAGENET_ROOT = "moat/"


def detect_layout(shape_map: Dict[str, list]) -> str:
  """'trainer', 'model_only', 'backbone' (pixel-encoder keys only) or
  'moat_imagenet' (name-based MOAT ImageNet checkpoint).

  Args:
    shape_map: the reader's get_variable_to_shape_map().
  """
  if (any(k.startswith(MOAT_IMAGENET_ROOT) for k in shape_map)
      and not any(k.endswith(VALUE_SUFFIX) for k in shape_map)):
    return "moat_imagenet"
  roots = {k.split("/", 1)[0] for k in shape_map}
  if "global_step" in roots or "optimizer" in roots:
    return "trainer"
  model_roots = {k.split("/", 1)[0] for k in model_keys_of(shape_map)}
  if model_roots & set(KMAX_ROOTS) - {"encoder"}:
    return "model_only"
  return "backbone"


def _problems_listing(path, layout, missing, unexpected, mismatched):
  problems = []
  if missing:
    problems.append(f"model variables with no checkpoint entry {_listing(missing)}")
  if unexpected:
    problems.append(f"checkpoint entries the model does not have {_listing(unexpected)}")
  if mismatched:
    hint = ""
    if any(is_class_dependent(m.split(":")[0]) for m in mismatched):
      hint = ("\n  The class-dependent last layers differ: the checkpoint was trained with "
              "another number of classes than the config's dataset. To fine-tune, skip them "
              "(skip_class_layers=True).")
    problems.append(f"shape mismatches {_listing(mismatched)}{hint}")
  if problems:
    raise CheckpointMismatchError(
        f"DeepLab2 checkpoint {path} ({layout} layout) does not match the model:\n  "
        + "\n  ".join(problems)
        + "\n  (A different backbone, dataset or num_mask_slots than the config's is the usual cause.)")


def _load_moat_imagenet(reader, shape_map, path, imagenet_map) -> ImportReport:
  if imagenet_map is None:
    raise CheckpointMismatchError(
        f"{path} is a name-based MOAT ImageNet checkpoint (keys 'moat/...'), but the model's "
        "pixel encoder is not MOAT; use a config with a MOAT backbone.")
  ckpt = {k: list(s) for k, s in shape_map.items()}
  missing = set(imagenet_map) - set(ckpt)
  mismatched = [f"{k}: checkpoint {ckpt[k]} vs model {list(v.shape)}"
                for k, v in imagenet_map.items() if k in ckpt and list(v.shape) != ckpt[k]]
  _problems_listing(path, "moat_imagenet", missing, (), mismatched)
  values = {k: reader.get_tensor(k) for k in imagenet_map}
  for k, var in imagenet_map.items():
    var.assign(np.asarray(values[k], dtype=var.dtype.as_numpy_dtype))
  return ImportReport(path=path, layout="moat_imagenet", num_assigned=len(imagenet_map),
                      global_step=None, skipped=tuple(sorted(set(ckpt) - set(imagenet_map))))


def load_deeplab2_checkpoint(variable_map: Dict[str, tf.Variable], path: str,
                             *, backbone_only: bool = False,
                             skip_class_layers: bool = False,
                             imagenet_variable_map: Optional[Dict[str, tf.Variable]] = None
                             ) -> ImportReport:
  """Fills the variables of `variable_map` {DeepLab2 key (no suffix): variable}.

  Args:
    variable_map: the model's full DeepLab2 name map (KMaXDeepLab.deeplab2_variable_map()).
    path: checkpoint prefix or directory, in DeepLab2's model-only, trainer or
      ImageNet-backbone layout.
    backbone_only: fill only the pixel encoder (keys under 'encoder/'); the
      checkpoint may hold more (it is then read for the encoder alone) or only
      the encoder, with or without the 'encoder/' prefix.
    skip_class_layers: neither require nor fill the class-count-dependent last
      layers (fine-tuning to a dataset with another number of classes).
    imagenet_variable_map: {name: variable} of the encoder's trainable
      variables in a name-based MOAT ImageNet checkpoint (None if the encoder
      is not MOAT); used only for such checkpoints, which fill the encoder
      alone whatever `backbone_only` says.
  Raises:
    CheckpointMismatchError listing every unmatched name and shape mismatch.
  """
  path = resolve_checkpoint_path(path)
  reader = tf.train.load_checkpoint(path)
  shape_map = reader.get_variable_to_shape_map()
  layout = detect_layout(shape_map)
  if layout == "moat_imagenet":
    return _load_moat_imagenet(reader, shape_map, path, imagenet_variable_map)
  # normalized key -> (key in the file, shape)
  ckpt = {k: (k, s) for k, s in model_keys_of(shape_map).items()}
  if layout == "backbone" and not any(k.startswith(ENCODER_PREFIX) for k in ckpt):
    ckpt = {ENCODER_PREFIX + k: v for k, v in ckpt.items()}  # keys relative to the encoder

  def skipped_key(key):
    return skip_class_layers and is_class_dependent(key)

  wanted = {k: v for k, v in variable_map.items() if not skipped_key(k)}
  skipped = tuple(sorted(k for k in variable_map if k not in wanted))
  if backbone_only or layout == "backbone":
    wanted = {k: v for k, v in wanted.items() if k.startswith(ENCODER_PREFIX)}
    ckpt = {k: v for k, v in ckpt.items() if k.startswith(ENCODER_PREFIX)}
  ckpt = {k: v for k, v in ckpt.items() if not skipped_key(k)}

  missing = set(wanted) - set(ckpt)
  unexpected = set(ckpt) - set(wanted)
  mismatched = [f"{k}: checkpoint {ckpt[k][1]} vs model {list(v.shape)}"
                for k, v in wanted.items() if k in ckpt and list(v.shape) != ckpt[k][1]]
  _problems_listing(path, layout, missing, unexpected, mismatched)

  # All checks passed: only now read and assign, so a failure leaves the model untouched.
  values = {k: reader.get_tensor(ckpt[k][0] + VALUE_SUFFIX) for k in wanted}
  for k, var in wanted.items():
    var.assign(np.asarray(values[k], dtype=var.dtype.as_numpy_dtype))
  global_step = None
  if "global_step" + VALUE_SUFFIX in shape_map:
    global_step = int(reader.get_tensor("global_step" + VALUE_SUFFIX))
  return ImportReport(path=path, layout=layout, num_assigned=len(wanted),
                      global_step=global_step, skipped=skipped)
