"""Turns a decoded image + panoptic label into model inputs and loss targets.

MaX-DeepLab targets (thing-id masks): Wang et al., "MaX-DeepLab", CVPR 2021.
Panoptic-DeepLab targets (centers, offsets): Cheng et al., CVPR 2020.

The outputs are those of DeepLab2's PanopticSampleGenerator, key for key
(kmax_tf.data.target_keys), so DeepLab2's losses and evaluators read them:
  image                  float32 [crop_h, crop_w, 3], 0..255, pad 127.5
  semantic_gt            int32 class ids (crowd pixels keep their class)
  semantic_loss_weight   float32, 1 (small_instance_weight on small things)
  panoptic_gt            int32 panoptic ids (crowd regions kept)
  is_crowd_gt            bool, thing pixels with instance id 0
  thing_id_mask_gt       int32, k for the k-th non-crowd thing instance in
                         raster order of first appearance, -1 elsewhere
  thing_id_class_gt      float32 [max_thing_id], class of thing k, -1 pad
  center_loss_weight, regression_loss_weight, instance_center_gt,
  instance_regression_gt (with center_targets=True: Panoptic-DeepLab's)
  evaluation only: image_name, size_raw, semantic_raw, panoptic_raw,
  is_crowd_raw (labels at the original size).
Evaluation resizes to the min/max range and pads to the crop; training adds
random scale, AutoAugment, random crop with ignore padding, flip and
panoptic copy-paste (kmax_tf.data.preprocessing, .autoaugment,
.panoptic_copy_paste). All randomness is drawn from the per-sample seed.
"""

from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from kmax_tf.data import autoaugment
from kmax_tf.data import preprocessing
from kmax_tf.data import target_keys
from kmax_tf.data import tfrecord_format
from kmax_tf.data.dataset_descriptor import DatasetDescriptor
from kmax_tf.data.panoptic_copy_paste import OPTIONS as COPY_PASTE_OPTIONS
from kmax_tf.data.panoptic_copy_paste import panoptic_copy_paste


def _gaussian(sigma: float) -> np.ndarray:
  """The center heatmap blob: size int(6 sigma + 3), peak 1 at 3 sigma + 1."""
  size = int(6 * sigma + 3)
  grid = np.arange(size, dtype=np.float64)
  peak = 3 * sigma + 1
  return np.exp(-((grid[np.newaxis] - peak) ** 2 +
                  (grid[:, np.newaxis] - peak) ** 2) /
                (2 * sigma ** 2)).astype(np.float32)


class PanopticSampleGenerator:
  """Preprocessing and target generation for one dataset and mode."""

  def __init__(self, descriptor: DatasetDescriptor, is_training: bool,
               crop_size: Sequence[int],
               min_resize_value: preprocessing.ResizeValue = None,
               max_resize_value: preprocessing.ResizeValue = None,
               resize_factor: Optional[int] = None,
               min_scale_factor: float = 1.0, max_scale_factor: float = 1.0,
               scale_factor_step_size: float = 0.0,
               autoaugment_policy_name: Optional[str] = None,
               thing_id_mask_annotations: bool = True,
               max_thing_id: int = 128,
               small_instance_threshold: int = 0,
               small_instance_weight: float = 1.0,
               center_targets: bool = False, sigma: float = 8.0,
               copy_paste_scale: float = 0.0,
               copy_paste_thing_option: str = "random",
               copy_paste_stuff_option: str = "random",
               copy_paste_void_option: str = "none"):
    """Creates the generator.

    Args:
      descriptor: Label space of the dataset.
      is_training: Training (augmentation, random crop) or evaluation.
      crop_size: [height, width] of the model input.
      min_resize_value: Resize so both sides reach it (one value or [h, w];
        None or non-positive: no minimum).
      max_resize_value: Resize so both sides fit it; at most the crop size.
        Evaluation defaults it to the crop size.
      resize_factor: Resized sides become multiples of it plus one.
      min_scale_factor, max_scale_factor, scale_factor_step_size: Random
        scale range and step (step 0: continuous) for training.
      autoaugment_policy_name: AutoAugment policy for training (None: off).
      thing_id_mask_annotations: Produce thing_id_mask_gt/thing_id_class_gt.
      max_thing_id: Length of thing_id_class_gt; more thing instances in one
        crop are an error.
      small_instance_threshold: Thing instances with fewer pixels get
        semantic_loss_weight = small_instance_weight (0: off).
      small_instance_weight: See above.
      center_targets: Also produce Panoptic-DeepLab's center/offset targets
        (DeepLab2 always does; kMaX does not use them).
      sigma: Standard deviation of the center heatmap blobs.
      copy_paste_scale: Panoptic copy-paste: scale of the pasted sample
        relative to the canvas's random scale range (0: off). Training only.
      copy_paste_thing_option, copy_paste_stuff_option,
      copy_paste_void_option: "none", "random" or "all" (see
        kmax_tf.data.panoptic_copy_paste).
    """
    self.descriptor = descriptor
    self.is_training = bool(is_training)
    if len(crop_size) != 2:
      raise ValueError(f"crop_size must be [height, width], got {crop_size}")
    self.crop_size = (int(crop_size[0]), int(crop_size[1]))
    self.min_resize_value = preprocessing.resize_spec(min_resize_value)
    max_resize = preprocessing.resize_spec(max_resize_value)
    if max_resize is None and not self.is_training:
      max_resize = self.crop_size
    if max_resize and (max_resize[0] > self.crop_size[0] or
                       max_resize[1] > self.crop_size[1]):
      raise ValueError(f"max_resize_value {max_resize} exceeds crop_size "
                       f"{self.crop_size}")
    self.max_resize_value = max_resize
    self.resize_factor = resize_factor or None
    self.min_scale_factor = float(min_scale_factor)
    self.max_scale_factor = float(max_scale_factor)
    self.scale_factor_step_size = float(scale_factor_step_size)
    if autoaugment_policy_name and (
        autoaugment_policy_name not in autoaugment.POLICIES):
      raise ValueError(
          f"Unknown autoaugment_policy_name {autoaugment_policy_name!r}; "
          f"known: {sorted(autoaugment.POLICIES)}")
    self.autoaugment_policy_name = autoaugment_policy_name or None
    self.thing_id_mask_annotations = bool(thing_id_mask_annotations)
    self.max_thing_id = int(max_thing_id)
    self.small_instance_threshold = int(small_instance_threshold)
    self.small_instance_weight = float(small_instance_weight)
    self.center_targets = bool(center_targets)
    self.sigma = float(sigma)
    for option in (copy_paste_thing_option, copy_paste_stuff_option,
                   copy_paste_void_option):
      if option not in COPY_PASTE_OPTIONS:
        raise ValueError(f"copy-paste options must be one of "
                         f"{COPY_PASTE_OPTIONS}, got {option!r}")
    self.copy_paste_scale = float(copy_paste_scale)
    self.copy_paste_thing_option = copy_paste_thing_option
    self.copy_paste_stuff_option = copy_paste_stuff_option
    self.copy_paste_void_option = copy_paste_void_option
    self._label_ignore = descriptor.ignore_label * (
        descriptor.panoptic_label_divisor)

  @property
  def uses_copy_paste(self) -> bool:
    return self.is_training and self.copy_paste_scale > 0

  @classmethod
  def from_dataset_options(cls, options, descriptor: DatasetDescriptor,
                           is_training: bool, **overrides
                           ) -> "PanopticSampleGenerator":
    """Builds the generator from a config's DatasetOptions message.

    Args:
      options: DatasetOptions (train_dataset_options or eval_dataset_options).
      descriptor: the dataset's DatasetDescriptor.
      is_training: training augmentation and targets, else eval preprocessing.
      **overrides: constructor arguments that replace the config's.
    """
    augmentations = options.augmentations
    kwargs = dict(
        descriptor=descriptor, is_training=is_training,
        crop_size=list(options.crop_size),
        min_resize_value=list(options.min_resize_value),
        max_resize_value=list(options.max_resize_value),
        resize_factor=options.resize_factor or None,
        min_scale_factor=augmentations.min_scale_factor,
        max_scale_factor=augmentations.max_scale_factor,
        scale_factor_step_size=augmentations.scale_factor_step_size,
        autoaugment_policy_name=augmentations.autoaugment_policy_name or None,
        thing_id_mask_annotations=options.thing_id_mask_annotations,
        max_thing_id=options.max_thing_id,
        small_instance_threshold=(options.small_instance_threshold
                                  if options.increase_small_instance_weights
                                  else 0),
        small_instance_weight=options.small_instance_weight,
        sigma=options.sigma)
    if augmentations.HasField("panoptic_copy_paste"):
      paste = augmentations.panoptic_copy_paste
      kwargs.update(
          copy_paste_scale=paste.panoptic_copy_paste_scale,
          copy_paste_thing_option=paste.panoptic_copy_paste_thing_option,
          copy_paste_stuff_option=paste.panoptic_copy_paste_stuff_option,
          copy_paste_void_option=paste.panoptic_copy_paste_void_option)
    kwargs.update(overrides)
    return cls(**kwargs)

  # Preprocessing.

  def _resize(self, image, label):
    if self.min_resize_value or self.max_resize_value:
      image, label = preprocessing.resize_to_range(
          image, label, self.min_resize_value, self.max_resize_value,
          self.resize_factor)
    return image, label

  def _augment(self, image, label, seed, scale_multiplier, pad_value):
    """Training geometry/colour augmentation of one sample."""
    scale_seed, augment_seed, crop_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 4))
    image, label = self._resize(image, label)
    scale = preprocessing.random_scale_factor(
        scale_seed, self.min_scale_factor * scale_multiplier,
        self.max_scale_factor * scale_multiplier, self.scale_factor_step_size)
    image, label = preprocessing.scale_image_and_label(image, label, scale)
    if self.autoaugment_policy_name:
      image = tf.cast(autoaugment.apply_policy(
          tf.cast(image, tf.uint8), self.autoaugment_policy_name,
          augment_seed), tf.float32)
    image, label = preprocessing.random_pad_and_crop(
        image, label, self.crop_size[0], self.crop_size[1], pad_value,
        crop_seed)
    image, label, _ = preprocessing.random_flip(image, label, flip_seed)
    return image, label

  def _preprocess_eval(self, image, label):
    image, label = self._resize(image, label)
    image, label = preprocessing.pad_image_and_label(
        image, label, 0, 0, self.crop_size[0], self.crop_size[1],
        self._label_ignore)
    image.set_shape([self.crop_size[0], self.crop_size[1], 3])
    if label is not None:
      label.set_shape([self.crop_size[0], self.crop_size[1], 1])
    return image, label

  # Targets.

  def _split_label(self, label):
    """(semantic, thing mask, crowd mask, label with crowd set to void)."""
    divisor = self.descriptor.panoptic_label_divisor
    semantic = label // divisor
    # Class ids outside [0, num_classes) (e.g. ignore label 255) are no thing.
    num_classes = self.descriptor.num_classes
    thing_table = np.zeros(num_classes + 1, bool)
    thing_table[list(self.descriptor.class_has_instances_list)] = True
    in_range = tf.logical_and(semantic >= 0, semantic < num_classes)
    is_thing = tf.gather(thing_table,
                         tf.where(in_range, semantic, num_classes))
    crowd = tf.logical_and(is_thing, tf.equal(label % divisor, 0))
    without_crowd = tf.where(crowd, tf.fill(tf.shape(label),
                                            self._label_ignore), label)
    return semantic, is_thing, crowd, without_crowd

  def _instance_ids(self, panoptic):
    """Unique ids (first-appearance order) and which are thing instances."""
    divisor = self.descriptor.panoptic_label_divisor
    ids, pixel_index, counts = tf.unique_with_counts(tf.reshape(panoptic,
                                                                [-1]))
    is_instance = tf.logical_and(
        tf.not_equal(ids // divisor, self.descriptor.ignore_label),
        tf.not_equal(ids % divisor, 0))
    return ids, pixel_index, counts, is_instance

  def _small_instance_weights(self, panoptic, ids, pixel_index, counts,
                              is_instance):
    small = tf.logical_and(is_instance, counts < self.small_instance_threshold)
    pixel_small = tf.reshape(tf.gather(small, pixel_index), tf.shape(panoptic))
    return tf.where(pixel_small, self.small_instance_weight, 1.0)

  def _thing_ids(self, panoptic, ids, pixel_index, is_instance, source):
    """thing_id_mask [H, W, 1] int32 and thing_id_class [max_thing_id]."""
    number = tf.cumsum(tf.cast(is_instance, tf.int32)) - 1
    num_things = tf.reduce_sum(tf.cast(is_instance, tf.int32))
    check = tf.debugging.Assert(num_things <= self.max_thing_id, [
        tf.strings.join([
            "Image ", source, ": a crop has ", tf.strings.as_string(num_things),
            f" thing instances, more than max_thing_id = {self.max_thing_id}"
            " (raise dataset_options.max_thing_id)"])])
    with tf.control_dependencies([check]):
      per_id = tf.where(is_instance, number, -1)
    mask = tf.reshape(tf.gather(per_id, pixel_index), tf.shape(panoptic))
    classes = tf.cast(
        tf.boolean_mask(ids, is_instance) //
        self.descriptor.panoptic_label_divisor, tf.float32)
    class_gt = tf.concat(
        [classes, -tf.ones([self.max_thing_id - num_things], tf.float32)], 0)
    class_gt.set_shape([self.max_thing_id])
    return mask, class_gt

  def _centers_and_offsets(self, panoptic, ids, is_instance):
    """Panoptic-DeepLab heatmap [H, W] and offsets [H, W, 2] (float32).

    Each instance's center is the rounded mean of its pixel coordinates,
    averaged in float32 with the same reduction DeepLab2 uses so rounding
    matches; blobs are combined with a maximum.
    """
    gaussian = tf.constant(_gaussian(self.sigma))
    blob = int(gaussian.shape[0])
    pad_begin = int(round(3 * self.sigma + 1))
    shape = tf.shape(panoptic)
    height, width = shape[0], shape[1]
    rows = tf.range(height)[:, tf.newaxis, tf.newaxis]
    cols = tf.range(width)[tf.newaxis, :, tf.newaxis]
    instance_ids = tf.boolean_mask(ids, is_instance)
    padded_size = tf.stack([height + blob, width + blob])

    def body(i, center, offset_y, offset_x):
      in_instance = tf.equal(panoptic, instance_ids[i])
      coordinates = tf.cast(tf.transpose(tf.where(in_instance)), tf.float32)
      mean = tf.reduce_mean(coordinates, axis=1)
      center_y = tf.cast(tf.round(mean[0]), tf.int32)
      center_x = tf.cast(tf.round(mean[1]), tf.int32)
      # In padded coordinates the blob's corner is at the center itself.
      placed = tf.pad(gaussian, tf.stack([
          tf.stack([center_y, padded_size[0] - center_y - blob]),
          tf.stack([center_x, padded_size[1] - center_x - blob])]))
      center = tf.maximum(center, placed)
      offset_y = tf.where(in_instance, center_y - rows, offset_y)
      offset_x = tf.where(in_instance, center_x - cols, offset_x)
      return i + 1, center, offset_y, offset_x

    zeros = tf.zeros_like(panoptic)
    _, center, offset_y, offset_x = tf.while_loop(
        lambda i, *_: i < tf.shape(instance_ids)[0], body,
        (tf.constant(0), tf.zeros(padded_size, tf.float32), zeros, zeros))
    center = center[pad_begin:pad_begin + height, pad_begin:pad_begin + width]
    offsets = tf.cast(tf.concat([offset_y, offset_x], axis=2), tf.float32)
    return center, offsets

  def targets(self, label: tf.Tensor, source=None) -> Dict[str, tf.Tensor]:
    """The loss targets of a preprocessed [H, W, 1] int32 panoptic label.

    Args:
      label: int32 [H, W, 1] panoptic ids (class * label_divisor + instance),
        after resizing/cropping.
      source: string scalar naming the image in error messages (too many thing
        instances); None reads "<unknown>".

    Returns:
      target key -> tensor, the target entries described in the module
      docstring ([H, W] maps, thing_id_class_gt [max_thing_id]).
    """
    semantic, is_thing, crowd, panoptic = self._split_label(label)
    ids, pixel_index, counts, is_instance = self._instance_ids(panoptic)
    if self.small_instance_threshold > 0:
      weights = self._small_instance_weights(panoptic, ids, pixel_index,
                                             counts, is_instance)
    else:
      weights = tf.ones(tf.shape(label), tf.float32)
    out = {
        target_keys.SEMANTIC_GT: semantic[..., 0],
        target_keys.SEMANTIC_LOSS_WEIGHT: weights[..., 0],
        target_keys.IS_CROWD_GT: crowd[..., 0],
        target_keys.PANOPTIC_GT: label[..., 0],
    }
    if self.center_targets:
      not_crowd = tf.logical_not(crowd)
      out[target_keys.CENTER_LOSS_WEIGHT] = tf.cast(tf.logical_and(
          not_crowd, tf.not_equal(semantic, self.descriptor.ignore_label)),
                                                    tf.float32)[..., 0]
      out[target_keys.REGRESSION_LOSS_WEIGHT] = tf.cast(
          tf.logical_and(not_crowd, is_thing), tf.float32)[..., 0]
      center, offsets = self._centers_and_offsets(panoptic, ids, is_instance)
      out[target_keys.INSTANCE_CENTER_GT] = center
      out[target_keys.INSTANCE_REGRESSION_GT] = offsets
    if self.thing_id_mask_annotations:
      mask, class_gt = self._thing_ids(
          panoptic, ids, pixel_index, is_instance,
          tf.constant("<unknown>") if source is None else source)
      out[target_keys.THING_ID_MASK_GT] = mask[..., 0]
      out[target_keys.THING_ID_CLASS_GT] = class_gt
    return out

  # Entry point.

  def __call__(self, sample: Dict[str, tf.Tensor],
               seed: Optional[tf.Tensor] = None,
               paste_sample: Optional[Dict[str, tf.Tensor]] = None
               ) -> Dict[str, tf.Tensor]:
    """Preprocesses one decoded sample and computes its targets.

    Args:
      sample: Decoded record (kmax_tf.data.tfrecord_format.decode_example):
        image uint8 [H, W, 3], image_name, height, width, label int32
        [H, W, 1] (optional in evaluation).
      seed: [2] int stateless seed (training only; required there).
      paste_sample: Second decoded sample for panoptic copy-paste (training
        with copy_paste_scale > 0).

    Returns:
      The sample dict described in the module docstring.
    """
    image = tf.cast(sample[tfrecord_format.IMAGE], tf.float32)
    label = sample.get(tfrecord_format.LABEL)
    name = sample.get(tfrecord_format.IMAGE_NAME)
    if label is not None:
      label = tf.cast(label, tf.int32)
      original_label = label
    if self.is_training:
      if label is None:
        raise ValueError("training samples need a label")
      if seed is None:
        raise ValueError("training needs a per-sample seed")
      main_seed, paste_seed, mix_seed = tf.unstack(
          tf.random.experimental.stateless_split(seed, 3))
      image, label = self._augment(image, label, main_seed, 1.0,
                                   self._label_ignore)
      if self.uses_copy_paste:
        if paste_sample is None:
          raise ValueError("panoptic copy-paste needs a paste_sample")
        padding_id = self._label_ignore + 1
        paste_image, paste_label = self._augment(
            tf.cast(paste_sample[tfrecord_format.IMAGE], tf.float32),
            tf.cast(paste_sample[tfrecord_format.LABEL], tf.int32),
            paste_seed, self.copy_paste_scale, padding_id)
        image, label = panoptic_copy_paste(
            image, label, paste_image, paste_label, mix_seed,
            self.descriptor.panoptic_label_divisor,
            self.descriptor.ignore_label,
            self.descriptor.class_has_instances_list,
            self.descriptor.stuff_class_ids, padding_id,
            self.copy_paste_thing_option, self.copy_paste_stuff_option,
            self.copy_paste_void_option)
    else:
      image, label = self._preprocess_eval(image, label)
    out = {target_keys.IMAGE: image}
    if label is not None:
      out.update(self.targets(label, name))
    if not self.is_training:
      out[target_keys.IMAGE_NAME] = name
      out[target_keys.SIZE_RAW] = tf.stack(
          [sample[tfrecord_format.HEIGHT], sample[tfrecord_format.WIDTH]])
      if label is not None:
        semantic, _, crowd, _ = self._split_label(original_label)
        out[target_keys.SEMANTIC_RAW] = semantic[..., 0]
        out[target_keys.PANOPTIC_RAW] = original_label[..., 0]
        out[target_keys.IS_CROWD_RAW] = crowd[..., 0]
    return out
