"""Converts an exported kMaX-DeepLab SavedModel to TFLite, post-processing included.

The `serving_default` signature (uint8 images in, panoptic maps and segment
table out) is converted with TFLite builtin operators only, so the file runs
in the stock interpreter (ai_edge_litert or tf.lite) without Flex delegates:
every operation of the graph (in-graph resize in float32, mask-wise
post-processing, nearest resizing by gathers, segment sums) has a builtin
kernel. The input size is fixed at conversion (TFLite plans memory for static
shapes); batch 1 by default.

Quantization modes:
  none          float32 weights and activations
  float16       float16 weights (dequantized at load time)
  dynamic_int8  int8 weights, float activations (dynamic range quantization)
  full_int8     the network's weights and activations in int8, calibrated on a
                representative image directory; pre- and post-processing stay
                float32 (int8 mask probabilities and pixel counts would break
                the thresholds and divisions of the mask-wise post-processing)
"""
import json
import os
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import tensorflow as tf

QUANTIZATIONS = ("none", "float16", "dynamic_int8", "full_int8")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def representative_images(directory: str, input_size: Sequence[int],
                          max_images: int = 100) -> Callable[[], Iterable]:
  """Representative dataset: images of `directory` resized to `input_size`, uint8.

  Args:
    directory: folder of .jpg/.jpeg/.png calibration images.
    input_size: (height, width) in pixels of the TFLite input.
    max_images: use at most this many images (in sorted name order).

  Returns:
    A generator function yielding [uint8 [1, height, width, 3] RGB] lists.
  """
  paths = sorted(os.path.join(directory, n) for n in os.listdir(directory)
                 if n.lower().endswith(IMAGE_EXTENSIONS))[:max_images]
  if not paths:
    raise ValueError(f"no .jpg/.jpeg/.png images in {directory}")

  def generate():
    for path in paths:
      image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
      image = tf.image.resize(image, input_size, antialias=True)
      yield [tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)[tf.newaxis]]

  return generate


def _fixed_size_function(loaded, input_size, batch_size):
  serve = loaded.signatures["serving_default"]
  spec = tf.TensorSpec([batch_size, *input_size, 3], tf.uint8, name="images")

  @tf.function(input_signature=[spec])
  def serving_default(images):
    return serve(images=images)

  return serving_default.get_concrete_function()


def signature_input_size(loaded) -> Optional[Sequence[int]]:
  """The fixed [H, W] of the SavedModel's serving_default input, or None if dynamic.

  Args:
    loaded: the result of tf.saved_model.load on a kmax_tf SavedModel.
  """
  spec = loaded.signatures["serving_default"].structured_input_signature[1]["images"]
  height, width = spec.shape[1], spec.shape[2]
  return None if height is None or width is None else [int(height), int(width)]


def convert(saved_model_dir: str, quantization: str = "none",
            input_size: Optional[Sequence[int]] = None, batch_size: int = 1,
            representative_dir: Optional[str] = None) -> bytes:
  """Returns the .tflite flatbuffer of the SavedModel's serving_default signature.

  Args:
    saved_model_dir: a SavedModel written by export_saved_model.
    quantization: 'none', 'float16' (weights), 'dynamic_int8' (weights,
      dynamic-range activations) or 'full_int8' (the network's operations
      only, calibrated on representative_dir).
    input_size: [H, W] of the TFLite input; default the SavedModel's fixed size,
      required when it was exported for any size.
    batch_size: fixed batch size of the TFLite input.
    representative_dir: folder of calibration images (full_int8 only).
  """
  if quantization not in QUANTIZATIONS:
    raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
  loaded = tf.saved_model.load(saved_model_dir)
  fixed = signature_input_size(loaded)
  if input_size is None:
    input_size = fixed
  if input_size is None:
    raise ValueError("the SavedModel accepts any image size: pass input_size (HxW) for TFLite")
  if fixed is not None and list(fixed) != list(input_size):
    raise ValueError(f"the SavedModel was exported for {fixed}, not {list(input_size)}")
  function = _fixed_size_function(loaded, list(input_size), batch_size)

  def new_converter():
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], loaded)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter

  converter = new_converter()
  if quantization == "float16":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
  elif quantization == "dynamic_int8":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  elif quantization == "full_int8":
    if not representative_dir:
      raise ValueError("full_int8 needs a directory of representative images")
    return _network_int8(new_converter, saved_model_dir,
                         representative_images(representative_dir, list(input_size)))
  return converter.convert()


def _network_int8(new_converter, saved_model_dir, representative_dataset) -> bytes:
  """Full-integer quantization of the network's operations only."""
  with open(os.path.join(saved_model_dir, "assets", "kmax_metadata.json")) as f:
    scope = json.load(f)["network_scope"] + "/"
  float_model = new_converter().convert()
  interp = tf.lite.Interpreter(model_content=float_model)
  names = {t["index"]: t["name"] for t in interp.get_tensor_details()}
  outside = sorted({names[i] for op in interp._get_ops_details()  # pylint: disable=protected-access
                    for i in op["outputs"] if i in names and not names[i].startswith(scope)})
  converter = new_converter()
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = representative_dataset
  debugger = tf.lite.experimental.QuantizationDebugger(
      converter=converter, debug_dataset=representative_dataset,
      debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=outside))
  return debugger.get_nondebug_quantized_model()


def interpreter(model_path: str, num_threads: Optional[int] = None):
  """The stock LiteRT interpreter (ai_edge_litert), the one phones and servers run.

  Args:
    model_path: the .tflite file.
    num_threads: CPU threads; None lets LiteRT choose.
  """
  try:
    from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("Running a .tflite file needs the LiteRT interpreter: "
                      "pip install 'kmax_tf[tflite]' (ai-edge-litert).") from e
  return Interpreter(model_path=model_path, num_threads=num_threads)


def run(interp, images: np.ndarray) -> dict:
  """Runs the converted serving_default signature on a uint8 batch.

  Args:
    interp: an interpreter() of a converted model.
    images: uint8 [batch_size, H, W, 3] RGB at the model's input size.

  Returns:
    output name -> numpy array, as the serving_default signature returns.
  """
  runner = interp.get_signature_runner()
  return runner(images=np.asarray(images, np.uint8))
