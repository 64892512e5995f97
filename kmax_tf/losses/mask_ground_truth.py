"""Ground-truth masks at the loss resolution for MaX-DeepLab / kMaX-DeepLab losses.

MaX-DeepLab (Wang et al., CVPR 2021) and kMaX-DeepLab
treat panoptic ground truth as a padded set of binary masks: one per thing
instance (up to `max_thing_id`, the length of `thing_id_class_gt`) followed by
one per stuff class. Static shapes are kept (TPU): absent masks are "void".

Mask order (rows), class order and void rules follow DeepLab2's
`MaXDeepLabLoss._pre_process_ground_truth`: thing masks first, then the stuff
classes in ascending id order; a mask whose area at the loss resolution is zero
is void; class one-hots use the (thing ids..., stuff ids...) order of the
transformer class logits.
"""
from typing import NamedTuple, Sequence

import tensorflow as tf

from kmax_tf.losses.strided_downsample import strided_downsample


class MaskGroundTruth(NamedTuple):
  """Mask-set view of a batch of panoptic targets (P = output pixels, M masks).

  Attributes:
    pixel_non_void: [B, P] float, 1 where the semantic label is not ignored.
    pixel_thing: [B, P] float, 1 on pixels of a (non-crowd) thing instance.
    pixel_mask_one_hot: [B, P, M] float, the mask each pixel belongs to.
    pixel_in_mask: [B, P] float, 1 on pixels that belong to some mask.
    pixel_inverse_mask_area: [B, P] float, P / max(area of the pixel's mask, 1).
    mask_class: [B, M] int32 dataset class id of each mask, -1 when void.
    mask_non_void: [B, M] float, 1 for masks present at this resolution.
    mask_class_one_hot: [B, M, K] float, class in (thing, stuff) order.
    mask_area: [B, M] float, pixel count of each mask.
  """
  pixel_non_void: tf.Tensor
  pixel_thing: tf.Tensor
  pixel_mask_one_hot: tf.Tensor
  pixel_in_mask: tf.Tensor
  pixel_inverse_mask_area: tf.Tensor
  mask_class: tf.Tensor
  mask_non_void: tf.Tensor
  mask_class_one_hot: tf.Tensor
  mask_area: tf.Tensor

  @classmethod
  def from_targets(cls, semantic_gt: tf.Tensor, thing_id_mask_gt: tf.Tensor,
                   thing_id_class_gt: tf.Tensor, output_size: Sequence[int],
                   ignore_label: int, thing_class_ids: Sequence[int],
                   stuff_class_ids: Sequence[int]) -> "MaskGroundTruth":
    """Builds the mask set from DeepLab2 sample-generator targets.

    Args:
      semantic_gt: [B, H, W] int semantic labels.
      thing_id_mask_gt: [B, H, W] int, thing instance index in [0, T) per
        pixel, -1 elsewhere.
      thing_id_class_gt: [B, T] class id of each thing index, -1 padded (any
        numeric dtype; DeepLab2 stores it as float32).
      output_size: (h, w) of the loss resolution; (H-1, W-1) must be a
        multiple of (h-1, w-1).
      ignore_label: void semantic label.
      thing_class_ids: thing class ids, in the order of the class logits.
      stuff_class_ids: stuff class ids, in the order of the class logits.
    """
    height, width = int(output_size[0]), int(output_size[1])
    num_pixels = height * width
    thing_class_ids = [int(c) for c in thing_class_ids]
    stuff_class_ids = [int(c) for c in stuff_class_ids]
    max_thing_id = thing_id_class_gt.shape[-1]
    if max_thing_id is None:
      raise ValueError("thing_id_class_gt needs a static last dimension.")
    num_masks = max_thing_id + len(stuff_class_ids)
    one_hot_depth = max(thing_class_ids + stuff_class_ids) + 1
    batch = tf.shape(semantic_gt)[0]

    semantic = tf.reshape(strided_downsample(tf.cast(semantic_gt, tf.int32), (height, width)),
                          [batch, num_pixels])
    pixel_non_void = tf.cast(tf.not_equal(semantic, ignore_label), tf.float32)
    # Labels outside [0, depth) (e.g. an ignore label of 255) one-hot to zeros.
    stuff_one_hot = tf.gather(tf.one_hot(semantic, one_hot_depth), stuff_class_ids, axis=-1)
    thing_ids = tf.reshape(strided_downsample(tf.cast(thing_id_mask_gt, tf.int32), (height, width)),
                           [batch, num_pixels])
    pixel_thing = tf.cast(tf.not_equal(thing_ids, -1), tf.float32)
    pixel_mask_one_hot = tf.concat([tf.one_hot(thing_ids, max_thing_id), stuff_one_hot], axis=-1)
    pixel_mask_one_hot = tf.ensure_shape(pixel_mask_one_hot, [None, num_pixels, num_masks])

    mask_area = tf.reduce_sum(pixel_mask_one_hot, axis=1)
    pixel_mask_area = tf.einsum("bpm,bm->bp", pixel_mask_one_hot, mask_area)
    pixel_inverse_mask_area = num_pixels / tf.maximum(pixel_mask_area, 1.0)

    thing_classes = tf.cast(tf.reshape(thing_id_class_gt, [batch, max_thing_id]), tf.int32)
    stuff_classes = tf.tile(tf.constant(stuff_class_ids, tf.int32)[None, :], [batch, 1])
    mask_class = tf.concat([thing_classes, stuff_classes], axis=-1)
    # A mask lost by the downsampling (zero area) is void like padding.
    mask_class = tf.where(mask_area > 0.5, mask_class, -1)
    mask_class_one_hot = tf.gather(tf.one_hot(mask_class, one_hot_depth),
                                   thing_class_ids + stuff_class_ids, axis=-1)
    return cls(
        pixel_non_void=pixel_non_void,
        pixel_thing=pixel_thing,
        pixel_mask_one_hot=pixel_mask_one_hot,
        pixel_in_mask=tf.reduce_sum(pixel_mask_one_hot, axis=-1),
        pixel_inverse_mask_area=pixel_inverse_mask_area,
        mask_class=mask_class,
        mask_non_void=tf.cast(mask_class > -1, tf.float32),
        mask_class_one_hot=mask_class_one_hot,
        mask_area=mask_area)
