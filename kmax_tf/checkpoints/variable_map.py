"""Helpers every DeepLab2 name map uses: {checkpoint key: variable} built by adding.

Each `deeplab2_*_names` module walks one part of the model and adds its
variables under DeepLab2's keys (without the '/.ATTRIBUTES/VARIABLE_VALUE'
suffix) with these functions, which refuse a key given twice; `check_complete`
then proves every variable of the part has exactly one key.
"""
from typing import Dict, Iterable

import tensorflow as tf

VariableMap = Dict[str, tf.Variable]

BN_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")
LN_WEIGHTS = ("gamma", "beta")
CONV_WEIGHTS = ("kernel", "bias")


def require_built(layer, what: str) -> None:
  """Raises ValueError unless `layer` (described as `what`) has built its variables."""
  if not layer.built:
    raise ValueError(f"Build the {what} (call it once) before mapping its variables.")


def add(mapping: VariableMap, key: str, variable: tf.Variable) -> None:
  """Adds `key` -> `variable`; raises ValueError if `key` is taken.

  Args:
    mapping: the map being built.
    key: DeepLab2 checkpoint key without the '/.ATTRIBUTES/VARIABLE_VALUE'
      suffix.
    variable: the model variable stored under it.
  """
  if key in mapping:
    raise ValueError(f"duplicate checkpoint key {key}")
  mapping[key] = variable


def add_all(mapping: VariableMap, part: VariableMap, prefix: str = "") -> None:
  """Adds every entry of `part`, its key prefixed by `prefix`.

  Args:
    mapping: the map being built.
    part: a sub-layer's map, keys relative to that sub-layer.
    prefix: prepended to each key as is (include the trailing '/').
  """
  for key, variable in part.items():
    add(mapping, prefix + key, variable)


def add_weights(mapping: VariableMap, prefix: str, layer, names: Iterable[str]) -> None:
  """Adds `prefix/<name>` for each attribute `name` of `layer`.

  Args:
    mapping: the map being built.
    prefix: the layer's key prefix, without a trailing '/'.
    layer: a built layer.
    names: its variable attributes, e.g. ("kernel", "bias").
  """
  for name in names:
    add(mapping, f"{prefix}/{name}", getattr(layer, name))


def add_batch_norm(mapping: VariableMap, prefix: str, bn) -> None:
  """Adds `prefix/{gamma,beta,moving_mean,moving_variance}` of a built BN layer."""
  add_weights(mapping, prefix, bn, BN_WEIGHTS)


def add_conv_bn_act(mapping: VariableMap, prefix: str, layer) -> None:
  """A ConvBNAct / Conv1DBNAct as DeepLab2's Conv2DSame, DepthwiseConv2DSame or Conv1D:
  `prefix/_conv/{kernel,bias}` (or `prefix/_depthwise_conv/depthwise_kernel`) and
  `prefix/_batch_norm/...`.

  Args:
    mapping: the map being built.
    prefix: the layer's DeepLab2 key prefix, without a trailing '/'.
    layer: a built ConvBNAct or Conv1DBNAct.
  """
  if getattr(layer, "depthwise", False):
    add(mapping, f"{prefix}/_depthwise_conv/depthwise_kernel", layer.conv.depthwise_kernel)
  else:
    add(mapping, f"{prefix}/_conv/kernel", layer.conv.kernel)
  if layer.use_bias:
    add(mapping, f"{prefix}/_conv/bias", layer.conv.bias)
  if layer.batch_norm is not None:
    add_batch_norm(mapping, f"{prefix}/_batch_norm", layer.batch_norm)


def check_complete(variables: Iterable[tf.Variable], mapping: VariableMap, what: str
                   ) -> VariableMap:
  """Returns `mapping` if it holds each of `variables` under exactly one key, else raises.

  `variables` is a layer's `weights` (or `trainable_weights` for maps that skip
  statistics).

  Args:
    variables: the variables the map must cover.
    mapping: the built map.
    what: the part's name for the error message.
  """
  variables = list(variables)
  mapped = {v.ref() for v in mapping.values()}
  unmapped = [v.name for v in variables if v.ref() not in mapped]
  if unmapped or len(mapped) != len(mapping) or len(mapped) != len(variables):
    raise ValueError(f"{what} variable map incomplete or a variable under several keys: "
                     f"unmapped {unmapped[:20]}")
  return mapping
