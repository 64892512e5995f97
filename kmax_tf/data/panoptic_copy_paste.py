"""Panoptic copy-paste augmentation.

kMaX-DeepLab (section 4,
"panoptic copy-paste"), extending thing copy-paste (Fang et al., InstaBoost,
ICCV 2019; Ghiasi et al., "Simple Copy-Paste", CVPR 2021) to stuff and void.

A random subset of the segments of a second (already preprocessed) sample is
pasted onto the first, image and label alike. The number of pasted segments
is uniform in [0, #segments] and the segments are drawn uniformly; then the
options force ("all") or forbid ("none") pasting of thing, stuff and void
segments ("random" leaves the draw alone). Pixels the second sample's
preprocessing padded (label `padding_id`) are never pasted. Pasted instance
ids k > 0 become label_divisor - 1 - k, so they cannot collide with the first
sample's ids 1, 2, ... (both must stay below label_divisor / 2).
"""

from typing import Sequence, Tuple

import tensorflow as tf

OPTIONS = ("none", "random", "all")


def _member(values: tf.Tensor, members: Sequence[int]) -> tf.Tensor:
  """int32 1 where values (1-D) is one of `members`, else 0."""
  if not members:
    return tf.zeros_like(values)
  hits = tf.equal(values[:, tf.newaxis],
                  tf.constant(list(members), values.dtype)[tf.newaxis])
  return tf.cast(tf.reduce_any(hits, axis=1), tf.int32)


def _apply_option(keep: tf.Tensor, members: tf.Tensor, option: str
                  ) -> tf.Tensor:
  if option == "none":
    return keep * (1 - members)
  if option == "all":
    return tf.maximum(keep, members)
  if option == "random":
    return keep
  raise ValueError(f"copy-paste option must be one of {OPTIONS}, got "
                   f"{option!r}")


def panoptic_copy_paste(image: tf.Tensor, label: tf.Tensor,
                        paste_image: tf.Tensor, paste_label: tf.Tensor,
                        seed: tf.Tensor, label_divisor: int, ignore_label: int,
                        thing_classes: Sequence[int],
                        stuff_classes: Sequence[int], padding_id: int,
                        thing_option: str = "random",
                        stuff_option: str = "random",
                        void_option: str = "none"
                        ) -> Tuple[tf.Tensor, tf.Tensor]:
  """Pastes random segments of (paste_image, paste_label) onto (image, label).

  Args:
    image: float32 [H, W, 3] canvas.
    label: int32 [H, W, 1] panoptic ids of the canvas.
    paste_image: float32 [H, W, 3], same size.
    paste_label: int32 [H, W, 1] panoptic ids of the pasted sample, with
      padded pixels set to `padding_id`.
    seed: [2] int stateless seed.
    label_divisor: Panoptic label divisor.
    ignore_label: Void class id.
    thing_classes: Thing class ids.
    stuff_classes: Stuff class ids (not void).
    padding_id: Label of the pasted sample's padding.
    thing_option, stuff_option, void_option: "none", "random" or "all".

  Returns:
    (image, label) after pasting.
  """
  count_seed, order_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, 2))
  flat = tf.reshape(paste_label, [-1])
  segment_ids, pixel_segment = tf.unique(flat)
  num_segments = tf.shape(segment_ids)[0]
  num_kept = tf.random.stateless_uniform([], count_seed, 0, num_segments + 1,
                                         dtype=tf.int32)
  # A uniformly random subset of size num_kept: the num_kept segments with
  # the smallest random keys.
  keys = tf.random.stateless_uniform([num_segments], order_seed)
  rank = tf.math.invert_permutation(tf.argsort(keys))
  keep = tf.cast(rank < num_kept, tf.int32)

  classes = segment_ids // label_divisor
  keep = _apply_option(keep, _member(segment_ids, [padding_id]), "none")
  keep = _apply_option(keep, _member(classes, thing_classes), thing_option)
  keep = _apply_option(keep, _member(classes, stuff_classes), stuff_option)
  keep = _apply_option(keep, _member(segment_ids, [ignore_label *
                                                   label_divisor]),
                       void_option)
  pasted = tf.reshape(tf.gather(keep, pixel_segment) > 0, tf.shape(label))

  half = label_divisor // 2
  check = tf.debugging.Assert(
      tf.logical_and(tf.reduce_max(label % label_divisor) < half,
                     tf.reduce_max(paste_label % label_divisor) < half),
      ["panoptic copy-paste needs instance ids below label_divisor / 2 =",
       half, "; convert the dataset with a larger label divisor"])
  with tf.control_dependencies([check]):
    paste_instance = paste_label % label_divisor
    paste_instance = tf.where(paste_instance == 0, paste_instance,
                              label_divisor - 1 - paste_instance)
    paste_panoptic = (paste_label // label_divisor) * label_divisor + (
        paste_instance)
  image = tf.where(pasted, paste_image, image)
  label = tf.where(pasted, paste_panoptic, label)
  return image, label
