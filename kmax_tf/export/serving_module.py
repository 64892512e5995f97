"""A self-contained tf.Module serving kMaX-DeepLab with pre- and post-processing.

Signatures (all take a batch; see export/README.md for the full contract):
  serving_default    images uint8 [B, H, W, 3] -> maps at H x W + segment table
  serve_image_bytes  image_bytes string [B] (JPEG/PNG) -> maps padded to the
                     largest image of the batch + image_sizes
  serve_logits       images uint8 [B, H, W, 3] -> raw mask/class logits at the
                     crop (for users who post-process themselves)

Images are resized in the graph as DeepLab2 evaluates (long side to the crop,
corner-aligned bilinear, mean-pixel padding), the network and the mask-wise
post-processor run at the crop, and the maps are cut back to the resized
region and resized to the input size with corner-aligned nearest neighbour.

The SavedModel holds only variables and traced graphs: the Keras model object
is deliberately not tracked, so loading needs neither kmax_tf nor Keras, does
not revive hundreds of layer call functions (what makes DeepLab2's SavedModel
slow to load), and only the variables the inference graph reads are saved.

Invalid requests fail with InvalidArgument and a message naming the problem;
the checks run on a shape-erased view of the input because a static shape in
the signature would let graph optimization fold them away.
"""
import types
from typing import Dict, Optional, Sequence, Tuple

import tensorflow as tf

from kmax_tf import outputs as keys
from kmax_tf.data import eval_geometry
from kmax_tf.data import preprocessing
from kmax_tf.export import segment_table
from kmax_tf.layers import drop_path

IMAGES = "images"
IMAGE_BYTES = "image_bytes"
IMAGE_SIZES = "image_sizes"
VALID_SIZE = "valid_size"
MAP_KEYS = (keys.PANOPTIC_PRED, keys.SEMANTIC_PRED, keys.INSTANCE_PRED, keys.INSTANCE_SCORES)
LOGIT_KEYS = (keys.PIXEL_SPACE_MASK_LOGITS, keys.TRANSFORMER_CLASS_LOGITS)
SLOT_KEYS = (keys.PASTED_SLOT_PANOPTIC_IDS, keys.PASTED_SLOT_SCORES)
# Value of pixels outside an image in serve_image_bytes outputs (batch padding).
PAD_VALUE = -1

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"


class KMaXServingModule(tf.Module):
  """Wraps a built, weight-loaded KMaXDeepLab (inference build) for export."""

  def __init__(self, model, *, crop_size: Sequence[int],
               min_resize_value: Optional[Sequence[int]],
               max_resize_value: Optional[Sequence[int]],
               resize_factor: Optional[int],
               max_input_size: int,
               input_size: Optional[Sequence[int]] = None,
               name: str = "kmax_serving"):
    """Args:
      model: KMaXDeepLab whose post-processor's output_size is `crop_size`.
      crop_size: [height, width] the network runs at.
      min_resize_value / max_resize_value / resize_factor: resize_to_range
        settings ([h, w] or None); max defaults to the crop.
      max_input_size: largest accepted image side; larger requests are rejected.
      input_size: [H, W] to fix the serving_default/serve_logits image size;
        None accepts any size.
    """
    super().__init__(name=name)
    self.crop_size = tuple(int(s) for s in crop_size)
    self.min_resize_value = preprocessing.resize_spec(min_resize_value)
    self.max_resize_value = preprocessing.resize_spec(max_resize_value) or self.crop_size
    if (self.max_resize_value[0] > self.crop_size[0] or
        self.max_resize_value[1] > self.crop_size[1]):
      raise ValueError(f"max_resize_value {self.max_resize_value} exceeds the crop "
                       f"{self.crop_size}")
    self.resize_factor = int(resize_factor) if resize_factor else None
    self.max_input_size = int(max_input_size)
    self.input_size = tuple(int(s) for s in input_size) if input_size else None
    active = [layer.name for layer in model.submodules
              if isinstance(layer, drop_path.DropPath) and layer.keep_prob != 1.0]
    if active:
      raise ValueError(f"Drop path is on in {active}: export an inference build "
                       "(kmax_tf.build_model without for_training).")
    post = model.post_processor
    if post is None or tuple(post.output_size) != self.crop_size:
      raise ValueError("The model's post-processor must output maps at the crop size "
                       f"{self.crop_size}.")
    self.label_divisor = post.label_divisor
    self.void_id = post.ignore_label * post.label_divisor
    self.num_slots = model.transformer_decoder.num_mask_slots
    # Name scope of the network's operations (TFLite full-int8 quantizes only these).
    self.network_scope = model.name

    crop_spec = tf.TensorSpec([None, *self.crop_size, 3], tf.float32)

    def network(crops):
      return model(crops, training=False, output_keys=LOGIT_KEYS)

    def post_process(mask_logits, class_logits):
      maps = post({keys.PIXEL_SPACE_MASK_LOGITS: mask_logits,
                   keys.TRANSFORMER_CLASS_LOGITS: class_logits})
      return {k: maps[k] for k in MAP_KEYS + SLOT_KEYS}

    # The tf.functions live in an untracked namespace: tracked ones would be
    # traced again when saving and stored twice (twice the graph to load).
    # The network and post-processing are traced once each and called by
    # every signature, so the file holds one copy of each.
    self._fns = types.SimpleNamespace()
    self._fns.network = tf.function(network, input_signature=[crop_spec])
    self._fns.post_process = tf.function(post_process)
    traced = [self._fns.network.get_concrete_function()]
    logits = traced[0].structured_outputs
    traced.append(self._fns.post_process.get_concrete_function(
        tf.TensorSpec.from_tensor(logits[keys.PIXEL_SPACE_MASK_LOGITS]),
        tf.TensorSpec.from_tensor(logits[keys.TRANSFORMER_CLASS_LOGITS])))
    # Only what the inference graph reads: the auxiliary semantic branch
    # (training only) is left out.
    seen = {}
    for fn in traced:
      for v in fn.graph.variables:
        seen.setdefault(id(v), v)
    self.inference_variables = list(seen.values())

    image_spec = tf.TensorSpec([None, *(self.input_size or (None, None)), 3], tf.uint8,
                               name=IMAGES)
    self._fns.serving_default = tf.function(self._serve_images, input_signature=[image_spec])
    self._fns.serve_logits = tf.function(self._serve_logits, input_signature=[image_spec])
    self._fns.serve_image_bytes = tf.function(
        self._serve_image_bytes,
        input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE_BYTES)])

  def signatures(self) -> Dict[str, tf.types.experimental.ConcreteFunction]:
    return {name: getattr(self._fns, name).get_concrete_function()
            for name in ("serving_default", "serve_image_bytes", "serve_logits")}

  # === Validation ===
  def _checked_images(self, images: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """Validates a uint8 batch; returns it (gated on the checks) and [H, W]."""
    shape = tf.shape(tf.compat.v1.placeholder_with_default(images, shape=None))
    rank_ok = tf.debugging.assert_equal(
        tf.size(shape), 4,
        message="`images` must have rank 4, [batch, height, width, 3] uint8; got rank")
    with tf.control_dependencies([rank_ok]):
      checks = [
          tf.debugging.assert_equal(shape[3], 3, message=(
              "`images` must have 3 channels (RGB), [batch, height, width, 3]; got channels")),
          tf.debugging.assert_positive(shape[0], message=(
              "empty batch: `images` needs at least one image; got batch size")),
          tf.debugging.assert_positive(shape[1] * shape[2], message=(
              "zero-size image: height and width must be >= 1; got height * width")),
          self._size_limit_check(shape[1:3], "`images`"),
      ]
      if self.input_size:
        checks.append(tf.debugging.assert_equal(
            shape[1:3], tf.constant(self.input_size), message=(
                f"this model was exported for {self.input_size[0]}x{self.input_size[1]} "
                "images (export with no --input_size for any size); got height, width")))
    with tf.control_dependencies(checks):
      return tf.identity(images), shape[1:3]

  def _size_limit_check(self, size, what):
    return tf.debugging.assert_less_equal(
        tf.reduce_max(size), self.max_input_size, message=(
            f"{what}: image larger than the configured maximum of {self.max_input_size} "
            "pixels per side (export_model.py --max_input_size); got height, width max"))

  # === Geometry ===
  def _resized_size(self, size):
    resized = eval_geometry.fitted_size(size, self.min_resize_value, self.max_resize_value,
                                        self.resize_factor, ratio_dtype=tf.float32)
    fits = tf.debugging.assert_less_equal(resized, tf.constant(self.crop_size), message=(
        f"resized image exceeds the crop {self.crop_size}; check the config's "
        "eval resize values; got"))
    with tf.control_dependencies([fits]):
      return tf.maximum(tf.identity(resized), 1)

  def _to_crop(self, images, resized):
    """uint8 [B, H, W, 3] -> float32 [B, crop_h, crop_w, 3] network input."""
    return eval_geometry.to_crop(images, resized, self.crop_size)

  def _from_crop(self, maps, resized, size):
    """Crop-size maps -> the resized region, resized to `size` (nearest)."""
    return {k: eval_geometry.crop_and_resize_nearest(maps[k], resized, size)
            for k in MAP_KEYS}

  def _with_segments(self, maps, slots):
    table = segment_table.segment_table(
        maps[keys.PANOPTIC_PRED], maps[keys.INSTANCE_PRED],
        slots[keys.PASTED_SLOT_PANOPTIC_IDS], slots[keys.PASTED_SLOT_SCORES],
        self.label_divisor, self.void_id)
    result = {k: maps[k] for k in MAP_KEYS}
    result.update(table)
    return result

  # === Signatures ===
  def _serve_images(self, images):
    images, size = self._checked_images(images)
    resized = self._resized_size(size)
    logits = self._fns.network(self._to_crop(images, resized))
    crop_maps = self._fns.post_process(logits[keys.PIXEL_SPACE_MASK_LOGITS],
                                       logits[keys.TRANSFORMER_CLASS_LOGITS])
    result = self._with_segments(self._from_crop(crop_maps, resized, size), crop_maps)
    result[IMAGE_SIZES] = tf.tile(size[tf.newaxis], [tf.shape(images)[0], 1])
    return result

  def _serve_logits(self, images):
    images, size = self._checked_images(images)
    resized = self._resized_size(size)
    result = dict(self._fns.network(self._to_crop(images, resized)))
    result[VALID_SIZE] = resized
    return result

  def _decode(self, data):
    """One encoded image -> (float32 crop, [H, W], resized [h, w])."""
    header = tf.strings.substr(data, 0, 8)
    is_png = tf.equal(header, _PNG_MAGIC)
    is_jpeg = tf.equal(tf.strings.substr(data, 0, 3), _JPEG_MAGIC)
    known = tf.debugging.Assert(tf.logical_or(is_png, is_jpeg), [
        "image_bytes: an element is not a JPEG or PNG image; its first bytes are",
        header], name="image_format")
    with tf.control_dependencies([known]):
      image = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
    size = tf.shape(image)[:2]
    checks = [tf.debugging.assert_positive(tf.reduce_prod(size), message=(
                  "image_bytes: zero-size image; got height * width")),
              self._size_limit_check(size, "image_bytes")]
    with tf.control_dependencies(checks):
      image = tf.identity(image)
    resized = self._resized_size(size)
    return self._to_crop(image[tf.newaxis], resized)[0], size, resized

  def _serve_image_bytes(self, image_bytes):
    shape = tf.shape(tf.compat.v1.placeholder_with_default(image_bytes, shape=None))
    rank_ok = tf.debugging.assert_equal(
        tf.size(shape), 1, message="`image_bytes` must be a 1-D batch of encoded images; got rank")
    with tf.control_dependencies([rank_ok]):
      nonempty = tf.debugging.assert_positive(shape[0], message=(
          "empty batch: `image_bytes` needs at least one image; got batch size"))
    with tf.control_dependencies([nonempty]):
      image_bytes = tf.identity(image_bytes)
    crops, sizes, resized = tf.map_fn(
        self._decode, image_bytes,
        fn_output_signature=(tf.TensorSpec([*self.crop_size, 3], tf.float32),
                             tf.TensorSpec([2], tf.int32), tf.TensorSpec([2], tf.int32)))
    logits = self._fns.network(crops)
    crop_maps = self._fns.post_process(logits[keys.PIXEL_SPACE_MASK_LOGITS],
                                       logits[keys.TRANSFORMER_CLASS_LOGITS])
    largest = tf.reduce_max(sizes, axis=0)

    def undo(args):
      one_maps, size, region = args
      out = self._from_crop({k: v[tf.newaxis] for k, v in one_maps.items()}, region, size)
      pad = [[0, largest[0] - size[0]], [0, largest[1] - size[1]]]
      return {k: tf.pad(v[0], pad, constant_values=tf.cast(PAD_VALUE, v.dtype))
              for k, v in out.items()}

    maps = tf.map_fn(undo, ({k: crop_maps[k] for k in MAP_KEYS}, sizes, resized),
                     fn_output_signature={k: tf.TensorSpec([None, None], crop_maps[k].dtype)
                                          for k in MAP_KEYS})
    result = self._with_segments(maps, crop_maps)
    result[IMAGE_SIZES] = sizes
    return result
