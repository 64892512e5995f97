"""Writes DeepLab2-format checkpoints from the parity-fixture weight manifests.

This is what a user downloading a DeepLab2 model-zoo checkpoint hands to our
importer, rebuilt bit for bit by the rule in
`../shared/fixtures/deeplab2_parity/README.md` ("Rebuilding a DeepLab2-format
checkpoint file"): every manifest tensor under its checkpoint key, plus the
`_CHECKPOINTABLE_OBJECT_GRAPH` bytes, written with SaveV2.

The MOAT models' object graph and trainer listing are stored gzipped
(`*.pb.gz`, `*_trainer_extras.tsv.gz`) in tests/testdata/deeplab2_moat.
"""
import gzip
import json
import os

import numpy as np
import tensorflow as tf

from kmax_tf.testing import deeplab2_fixtures as fx

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def _trainer_extras(model_name):
  """Zero-valued optimizer/step entries of DeepLab2's trainer layout (from its listing)."""
  variables = os.path.join(fx.model_dir(model_name), "variables")
  path = os.path.join(variables, f"kmax_{model_name}_ckpt_variables_trainer.tsv")
  opener = open
  if not os.path.exists(path):
    path = os.path.join(variables, f"kmax_{model_name}_ckpt_variables_trainer_extras.tsv.gz")
    opener = gzip.open
  extras = {}
  with opener(path, "rt") as f:
    for line in f:
      name, shape = line.rstrip("\n").split("\t")
      if name == OBJECT_GRAPH_KEY:
        continue
      if name.split("/", 1)[0] in ("optimizer", "backbone_optimizer", "global_step", "save_counter") \
          or ".OPTIMIZER_SLOT" in name:
        dtype = np.int64 if name.startswith(("global_step", "save_counter")) or "/iter/" in name else np.float32
        extras[name] = np.zeros(json.loads(shape), dtype)
  return extras


def write_checkpoint(model_name, prefix, layout="model_only", global_step=1234):
  """Writes `prefix`.{index,data-*} in DeepLab2's 'model_only', 'trainer' or 'backbone' layout."""
  tensors = {}
  for key, shape, mean, std in fx.read_manifest(model_name):
    if layout == "backbone" and not key.startswith("encoder/"):
      continue
    tensors[key] = fx.manifest_value(key, shape, mean, std)
  if layout == "model_only":
    graph = os.path.join(fx.model_dir(model_name), "manifests", f"kmax_{model_name}_object_graph.pb")
    opener = open
    if not os.path.exists(graph):
      graph, opener = graph + ".gz", gzip.open
    with opener(graph, "rb") as f:
      tensors[OBJECT_GRAPH_KEY] = np.array(f.read(), dtype=object)
  elif layout == "trainer":
    tensors.update(_trainer_extras(model_name))
    tensors["global_step/.ATTRIBUTES/VARIABLE_VALUE"] = np.array(global_step, np.int64)
  elif layout != "backbone":
    raise ValueError(f"unknown layout {layout!r}")
  names = sorted(tensors)
  os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                    tensors=[tf.constant(tensors[n]) for n in names])
  return prefix
