"""kmax_tf's own checkpoints, and loading either ours or DeepLab2's by inspection.

Ours are `tf.train.Checkpoint(model=model)` files, or trainer checkpoints that
also hold the optimizers and the step. DeepLab2's are recognised by their top-level
keys (`encoder/`, `pixel_decoder/`,
...) and go through the explicit name mapping of deeplab2_checkpoint_reader.
"""
import os
import shutil
import tempfile
from typing import Dict, Iterable, Optional

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from kmax_tf.checkpoints import deeplab2_checkpoint_reader as dl2

MODEL_ROOT = "model"
_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_VARIABLE_VALUE = "VARIABLE_VALUE"
_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_SLOT_MARK = "/.OPTIMIZER_SLOT/"


def save_model_checkpoint(model, prefix: str) -> str:
  """Writes `prefix`.index/.data-* atomically (temp dir, then rename).

  Args:
    model: the built model, saved as the `model` child of a tf.train.Checkpoint.
    prefix: checkpoint path prefix (directories are created).

  Returns:
    The written prefix.
  """
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


def _object_graph(reader) -> Optional[trackable_object_graph_pb2.TrackableObjectGraph]:
  if not reader.has_tensor(_OBJECT_GRAPH_KEY):
    return None
  graph = trackable_object_graph_pb2.TrackableObjectGraph()
  graph.ParseFromString(reader.get_tensor(_OBJECT_GRAPH_KEY))
  return graph


def is_kmax_tf_checkpoint(reader) -> bool:
  """A tf.train.Checkpoint whose root has a `model` child and no DeepLab2 roots.

  Args:
    reader: a tf.train.CheckpointReader (tf.train.load_checkpoint).
  """
  graph = _object_graph(reader)
  if graph is None:
    return False
  roots = {child.local_name for child in graph.nodes[0].children}
  return MODEL_ROOT in roots and not roots & set(dl2.KMAX_ROOTS)


def is_deeplab2_checkpoint(path: str) -> bool:
  """Anything that is not ours goes to DeepLab2's explicit name mapping.

  Args:
    path: checkpoint prefix.
  """
  return not is_kmax_tf_checkpoint(tf.train.load_checkpoint(path))


def model_variable_keys(model, reader) -> Dict[int, str]:
  """{id(variable): checkpoint key} for the model variables stored in a kmax_tf checkpoint.

  Walks the checkpoint's object graph and the model's object graph together,
  child name by child name, as tf.train.Checkpoint's restore does.

  Args:
    model: the built model.
    reader: a tf.train.CheckpointReader of a kmax_tf checkpoint.
  """
  graph = _object_graph(reader)
  root_children = {c.local_name: c.node_id for c in graph.nodes[0].children}
  keys = {}
  stack = [(model, root_children[MODEL_ROOT])]
  visited = set()
  while stack:
    obj, node_id = stack.pop()
    if node_id in visited:
      continue
    visited.add(node_id)
    node = graph.nodes[node_id]
    if isinstance(obj, tf.Variable):
      for attribute in node.attributes:
        if attribute.name == _VARIABLE_VALUE:
          keys[id(obj)] = attribute.checkpoint_key
      continue
    children = tf.train.TrackableView(obj).children(obj)
    for reference in node.children:
      child = children.get(reference.local_name)
      if child is not None:
        stack.append((child, reference.node_id))
  return keys


def class_dependent_variables(model) -> Dict[str, tf.Variable]:
  """{DeepLab2 key: variable} of the layers whose shape depends on the class count.

  Args:
    model: a built KMaXDeepLab.
  """
  return {k: v for k, v in model.deeplab2_variable_map().items() if dl2.is_class_dependent(k)}


def load_kmax_tf_checkpoint(model, path: str, skip: Iterable[int] = ()) -> int:
  """Assigns every model variable (but those whose id() is in `skip`) from our checkpoint.

  Trainer checkpoints also hold the optimizers and the step; those are not
  read. Everything is checked before anything is assigned: a model variable
  missing from the file, a shape mismatch, or a model value in the file that
  no variable takes is a CheckpointMismatchError. Returns the number assigned.

  Args:
    model: the built model.
    path: kmax_tf checkpoint prefix.
    skip: id() of variables to leave as they are (e.g. class layers).
  """
  reader = tf.train.load_checkpoint(path)
  keys = model_variable_keys(model, reader)
  shapes = reader.get_variable_to_shape_map()
  skip = set(skip)
  wanted = [v for v in model.variables if id(v) not in skip]
  missing = [v.name for v in wanted if keys.get(id(v)) not in shapes]
  mismatched = [f"{v.name}: checkpoint {shapes[keys[id(v)]]} vs model {list(v.shape)}"
                for v in wanted if id(v) in keys and keys[id(v)] in shapes
                and list(shapes[keys[id(v)]]) != list(v.shape)]
  stored = {k for k in shapes
            if k.startswith(MODEL_ROOT + "/") and k.endswith(_VALUE_SUFFIX) and _SLOT_MARK not in k}
  unused = sorted(stored - set(keys.values()))
  if missing or mismatched or unused:
    raise dl2.CheckpointMismatchError(
        f"kmax_tf checkpoint {path} does not match the model built from the config: "
        f"{len(missing)} model variable(s) missing from it (e.g. {missing[:5]}), "
        f"{len(mismatched)} shape mismatch(es) (e.g. {mismatched[:5]}), {len(unused)} stored "
        f"value(s) the model has no variable for (e.g. {unused[:5]}). A different backbone, "
        "dataset or num_mask_slots than the config's is the usual cause.")
  values = [(v, reader.get_tensor(keys[id(v)])) for v in wanted]
  for variable, value in values:
    variable.assign(np.asarray(value, variable.dtype.as_numpy_dtype))
  return len(values)


def load_checkpoint(model, path: str, skip_class_layers: bool = False) -> str:
  """Loads a kmax_tf or DeepLab2 checkpoint (prefix or directory) into a built model.

  Returns a short description of what was loaded. Any mismatch is an error,
  raised before any variable is assigned.

  Args:
    model: a built KMaXDeepLab.
    path: checkpoint prefix, or a directory holding a `checkpoint` file.
    skip_class_layers: leave the class-dependent last layers (semantic and
      class heads) as they are, for fine-tuning on another class count.
  """
  path = dl2.resolve_checkpoint_path(path)
  if is_deeplab2_checkpoint(path):
    report = dl2.load_deeplab2_checkpoint(
        model.deeplab2_variable_map(), path, skip_class_layers=skip_class_layers,
        imagenet_variable_map=model.deeplab2_imagenet_variable_map())
    return f"DeepLab2 {report.layout} checkpoint {path}: {report.num_assigned} variables"
  skip = ({id(v) for v in class_dependent_variables(model).values()}
          if skip_class_layers else ())
  count = load_kmax_tf_checkpoint(model, path, skip)
  return f"kmax_tf checkpoint {path}: {count} variables"
