"""Gradient recomputation ("checkpointing") for the kMaX-DeepLab trainer.

Recomputation:
Chen et al., "Training Deep Nets with Sublinear Memory Cost", 2016.

With recomputation a layer keeps only its inputs during the forward pass; its
inner activations are recomputed when the backward pass reaches it. Applied to
the pixel encoder and the pixel decoder, which hold most activations at large
crops, this trades roughly one extra forward pass of them for the memory of
their activations.

Two details keep the result identical to training without recomputation:
  - batch normalization uses the batch statistics in both passes, but the
    recomputing pass must not update the moving averages a second time: its
    momentum is set to 1 (moving = moving) while it is traced;
  - stochastic layers would draw new random numbers in the recomputing pass,
    so recomputation refuses layers with active drop path.
"""
import contextlib
from typing import List

import tensorflow as tf
import tf_keras

from kmax_tf.layers.drop_path import DropPath


def _sublayers(layer) -> List[tf_keras.layers.Layer]:
  return [l for l in layer._flatten_layers(include_self=True)]  # pylint: disable=protected-access


@contextlib.contextmanager
def _frozen_batch_norm_statistics(layers):
  norms = [l for l in layers if isinstance(l, tf_keras.layers.BatchNormalization)]
  momenta = [n.momentum for n in norms]
  for norm in norms:
    norm.momentum = 1.0
  try:
    yield
  finally:
    for norm, momentum in zip(norms, momenta):
      norm.momentum = momentum


def stochastic_sublayers(layer: tf_keras.layers.Layer) -> List[str]:
  """Names of the drop-path layers of `layer` that drop (keep_prob < 1).

  Args:
    layer: any Keras layer; its sublayers are searched recursively.
  """
  return [l.name for l in _sublayers(layer) if isinstance(l, DropPath) and l.keep_prob < 1.0]


def enable(layer: tf_keras.layers.Layer) -> None:
  """Makes `layer` (called with a tensor or a dict of tensors) recompute in the backward pass.

  Args:
    layer: the Keras layer whose activations are recomputed instead of kept.

  Raises:
    ValueError: the layer contains drop path with keep_prob < 1.
  """
  layers = _sublayers(layer)
  stochastic = stochastic_sublayers(layer)
  if stochastic:
    raise ValueError(f"Gradient recomputation of {layer.name} needs deterministic layers, but "
                     f"drop path is active in {stochastic[:3]}; set its keep probability "
                     "to 1.0 or train without recomputation.")
  original_call = layer.call

  def call(inputs, training=None, **kwargs):
    if not training:
      return original_call(inputs, training=training, **kwargs)
    flat_inputs = tf.nest.flatten(inputs)
    structure = {}
    passes = []

    @tf.recompute_grad
    def forward(*flat):
      again = bool(passes)
      passes.append(True)
      with _frozen_batch_norm_statistics(layers) if again else contextlib.nullcontext():
        result = original_call(tf.nest.pack_sequence_as(inputs, list(flat)), training=training,
                               **kwargs)
      structure["result"] = result
      return tf.nest.flatten(result)

    flat_outputs = forward(*flat_inputs)
    return tf.nest.pack_sequence_as(structure["result"], list(flat_outputs))

  layer.call = call
