"""The kMaX-DeepLab training loss: all terms with deep supervision.

kMaX-DeepLab trains with the
MaX-DeepLab losses (Wang et al., "End-to-End Panoptic Segmentation with Mask
Transformers", CVPR 2021): the PQ-style loss (class term + mask dice term) on
Hungarian-matched mask slots, the mask-ID cross-entropy, an instance
discrimination loss on the pixel features (CMT-DeepLab's pixel contrastive
form, Yu et al., CVPR 2022, when sampling), and an auxiliary semantic loss. The
first four are also applied to each kMaX decoder block's auxiliary prediction
(deep supervision), reusing the final prediction's matching and weights.

The computation follows DeepLab2's `MaXDeepLabLoss` (term names, weights,
reductions, void handling) so the values agree with it. Differences, all
outside what DeepLab2 computes correctly: the matching is the exact optimum
(DeepLab2's float32 matcher quantizes costs by ~6e-5; inject a matching with
`matched_slot_per_gt_mask` to reproduce its choice); when there are more
ground-truth masks than slots the unmatched masks are left out of the mask
terms (DeepLab2 assigns them a padded slot or slot 0); a sample size above the
number of output pixels is clipped to it (DeepLab2 fails).
"""
from typing import Any, Dict, Mapping, Optional, Sequence

import tensorflow as tf
import tf_keras

from kmax_tf import outputs
from kmax_tf.losses.instance_discrimination_loss import (
    mask_average_instance_discrimination_loss, pixel_contrastive_instance_discrimination_loss)
from kmax_tf.losses.mask_ground_truth import MaskGroundTruth
from kmax_tf.losses.mask_id_cross_entropy_loss import mask_id_cross_entropy_loss
from kmax_tf.losses.matched_targets import MatchedTargets
from kmax_tf.losses.pixel_sampling import gumbel_top_k, size_balanced_logits
from kmax_tf.losses.pq_style_loss import pq_style_class_term, pq_style_mask_dice_term
from kmax_tf.losses.semantic_loss import semantic_loss
from kmax_tf.runtime.no_autograph import without_autograph

# Targets read from the sample generator (DeepLab2 names).
GT_SEMANTIC = "semantic_gt"
GT_SEMANTIC_LOSS_WEIGHT = "semantic_loss_weight"
GT_THING_ID_MASK = "thing_id_mask_gt"
GT_THING_ID_CLASS = "thing_id_class_gt"

# Loss terms (DeepLab2 names; auxiliary terms are "aux_{i}" + name).
PQ_STYLE_LOSS_CLASS_TERM = "pq_style_loss_class_term"
PQ_STYLE_LOSS_MASK_DICE_TERM = "pq_style_loss_mask_dice_term"
MASK_ID_CROSS_ENTROPY_LOSS = "mask_id_cross_entropy_loss"
INSTANCE_DISCRIMINATION_LOSS = "instance_discrimination_loss"
SEMANTIC_LOSS = "semantic_loss"
TOTAL_LOSS = "total_loss"


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class KMaXLoss(tf_keras.layers.Layer):
  """All kMaX-DeepLab loss terms, per image.

  Call with `(y_true, y_pred)`:
    y_true: dict with semantic_gt [B, H, W] int, semantic_loss_weight [B, H, W],
      thing_id_mask_gt [B, H, W] int (-1 outside thing instances) and
      thing_id_class_gt [B, T] (class of each thing index, -1 padded), as
      produced by the panoptic sample generator with thing-id masks.
    y_pred: the model's training output dict (kmax_tf.outputs keys):
      semantic_logits [B, h, w, num_classes], pixel_space_mask_logits
      [B, h, w, N], transformer_class_logits [B, N, K + 1],
      pixel_space_normalized_feature [B, h, w, C] and auxiliary_outputs, a
      sequence of `auxiliary_output_number` dicts with the last three keys at
      the same (h, w). (H - 1, W - 1) must be a multiple of (h - 1, w - 1).
    matched_slot_per_gt_mask: optional [B, T + num stuff classes] int matching
      (slot of each ground-truth mask, thing masks then stuff classes) used
      instead of the optimal Hungarian matching.
    instance_discrimination_sample_indices: optional sequence of
      1 + auxiliary_output_number [B, sample_k] int pixel indices (main output
      first) used instead of random sampling.
    semantic_sample_indices: optional [B, semantic_sample_k] pixel indices.

  Returns a dict of [B] float32 tensors, weights applied: pq_style_loss_class_term,
  pq_style_loss_mask_dice_term, mask_id_cross_entropy_loss,
  instance_discrimination_loss (each also as "aux_{i}" + name), semantic_loss
  and total_loss (their sum). A term is present when its weight is > 0. Use
  `average_over_batch` for the scalars a trainer reports.
  """

  def __init__(self,
               num_classes: int,
               ignore_label: int,
               thing_class_ids: Sequence[int],
               pq_style_loss_weight: float = 3.0,
               mask_id_cross_entropy_loss_weight: float = 0.3,
               instance_discrimination_loss_weight: float = 1.0,
               semantic_loss_weight: float = 1.0,
               mask_id_cross_entropy_top_k_percent: float = 1.0,
               instance_discrimination_top_k_percent: float = 1.0,
               semantic_top_k_percent: float = 1.0,
               focal_loss_alpha: float = 0.75,
               instance_discrimination_temperature: float = 0.3,
               instance_discrimination_sample_k: int = 0,
               instance_discrimination_sample_temperature: float = 0.6,
               semantic_sample_k: int = 0,
               semantic_sample_temperature: float = 1.0,
               auxiliary_output_number: int = 6,
               **kwargs):
    """Creates the loss.

    Args:
      num_classes: semantic classes of the dataset (the semantic logits'
        channels), void included when the ignore label lies in [0, num_classes).
      ignore_label: void label of semantic_gt.
      thing_class_ids: thing class ids; stuff ids are the other non-void ids.
        Class logit channels are ordered thing ids then stuff ids, then void.
      pq_style_loss_weight: weight of both PQ-style terms.
      mask_id_cross_entropy_loss_weight: weight of the mask-ID cross-entropy.
      instance_discrimination_loss_weight: weight of instance discrimination.
      semantic_loss_weight: weight of the auxiliary semantic loss.
      mask_id_cross_entropy_top_k_percent: hard-pixel fraction of that loss.
      instance_discrimination_top_k_percent: hard-pixel fraction of that loss.
      semantic_top_k_percent: hard-pixel fraction of the semantic loss.
      focal_loss_alpha: positive vs. void weighting of the PQ-style terms.
      instance_discrimination_temperature: feature similarity temperature.
      instance_discrimination_sample_k: pixels sampled for the pixel
        contrastive loss; 0 uses MaX-DeepLab's mask-average loss on all thing
        pixels. (kMaX configs: 4096 COCO / Cityscapes, 1024 ADE20K.)
      instance_discrimination_sample_temperature: size-balancing exponent of
        that sampling.
      semantic_sample_k: pixels sampled for the semantic loss, 0 = all. Note:
        DeepLab2 (at the reference commit) does not pass the config's
        `semantic_sample_k` to its loss, so its semantic loss always uses all
        pixels; keep 0 to reproduce DeepLab2, set the config's value to get
        the sampling the config describes.
      semantic_sample_temperature: size-balancing exponent of that sampling.
      auxiliary_output_number: number of auxiliary predictions (deep
        supervision); kMaX-DeepLab has 6 (one per kMaX decoder block).
      **kwargs: tf_keras Layer arguments. The loss computes in float32.
    """
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)
    self.num_classes = int(num_classes)
    self.ignore_label = int(ignore_label)
    self.thing_class_ids = [int(c) for c in thing_class_ids]
    self.pq_style_loss_weight = float(pq_style_loss_weight)
    self.mask_id_cross_entropy_loss_weight = float(mask_id_cross_entropy_loss_weight)
    self.instance_discrimination_loss_weight = float(instance_discrimination_loss_weight)
    self.semantic_loss_weight = float(semantic_loss_weight)
    self.mask_id_cross_entropy_top_k_percent = float(mask_id_cross_entropy_top_k_percent)
    self.instance_discrimination_top_k_percent = float(instance_discrimination_top_k_percent)
    self.semantic_top_k_percent = float(semantic_top_k_percent)
    self.focal_loss_alpha = float(focal_loss_alpha)
    self.instance_discrimination_temperature = float(instance_discrimination_temperature)
    self.instance_discrimination_sample_k = int(instance_discrimination_sample_k)
    self.instance_discrimination_sample_temperature = float(
        instance_discrimination_sample_temperature)
    self.semantic_sample_k = int(semantic_sample_k)
    self.semantic_sample_temperature = float(semantic_sample_temperature)
    self.auxiliary_output_number = int(auxiliary_output_number)
    things = set(self.thing_class_ids)
    self.stuff_class_ids = [c for c in range(self.num_classes)
                            if c not in things and c != self.ignore_label]
    self.num_thing_stuff_classes = len(self.thing_class_ids) + len(self.stuff_class_ids)

  @property
  def loss_names(self):
    """Keys of the returned dict, in DeepLab2's order of accumulation."""
    per_output = []
    if self.instance_discrimination_loss_weight > 0:
      per_output.append(INSTANCE_DISCRIMINATION_LOSS)
    if self.pq_style_loss_weight > 0:
      per_output.append(PQ_STYLE_LOSS_MASK_DICE_TERM)
    if self.mask_id_cross_entropy_loss_weight > 0:
      per_output.append(MASK_ID_CROSS_ENTROPY_LOSS)
    if self.pq_style_loss_weight > 0:
      per_output.append(PQ_STYLE_LOSS_CLASS_TERM)
    aux_order = [k for k in (PQ_STYLE_LOSS_CLASS_TERM, PQ_STYLE_LOSS_MASK_DICE_TERM,
                             MASK_ID_CROSS_ENTROPY_LOSS, INSTANCE_DISCRIMINATION_LOSS)
                 if k in per_output]
    names = list(per_output)
    for i in range(self.auxiliary_output_number):
      names += [f"aux_{i}{k}" for k in aux_order]
    if self.semantic_loss_weight > 0:
      names.append(SEMANTIC_LOSS)
    return names + [TOTAL_LOSS]

  @without_autograph
  def call(self, y_true: Mapping[str, tf.Tensor], y_pred: Mapping[str, Any],
           matched_slot_per_gt_mask: Optional[tf.Tensor] = None,
           instance_discrimination_sample_indices: Optional[Sequence[tf.Tensor]] = None,
           semantic_sample_indices: Optional[tf.Tensor] = None) -> Dict[str, tf.Tensor]:
    heads = [y_pred] + list(self._auxiliary_outputs(y_pred))
    main_logits = tf.cast(y_pred[outputs.PIXEL_SPACE_MASK_LOGITS], tf.float32)
    height, width, num_slots = main_logits.shape.as_list()[1:]
    num_pixels = height * width
    class_channels = y_pred[outputs.TRANSFORMER_CLASS_LOGITS].shape[-1]
    if class_channels != self.num_thing_stuff_classes + 1:
      raise ValueError(
          f"transformer_class_logits has {class_channels} channels; expected "
          f"{self.num_thing_stuff_classes} thing + stuff classes + 1 void for "
          f"num_classes={self.num_classes}, ignore_label={self.ignore_label}.")

    def flat(tensor):
      if tensor.shape.as_list()[1:3] != [height, width]:
        raise ValueError(
            f"Auxiliary outputs must be at the main output size {height}x{width} "
            f"(the model resizes them in training mode); got {tensor.shape}.")
      tensor = tf.cast(tensor, tf.float32)
      return tf.reshape(tensor, [-1, num_pixels, tensor.shape[-1]])

    mask_logits = [flat(h[outputs.PIXEL_SPACE_MASK_LOGITS]) for h in heads]
    class_logits = [tf.cast(h[outputs.TRANSFORMER_CLASS_LOGITS], tf.float32) for h in heads]
    features = [flat(h[outputs.PIXEL_SPACE_NORMALIZED_FEATURE]) for h in heads]

    gt = MaskGroundTruth.from_targets(
        y_true[GT_SEMANTIC], y_true[GT_THING_ID_MASK], y_true[GT_THING_ID_CLASS],
        (height, width), self.ignore_label, self.thing_class_ids, self.stuff_class_ids)
    if self.pq_style_loss_weight > 0 or self.mask_id_cross_entropy_loss_weight > 0:
      targets = MatchedTargets.from_prediction(gt, mask_logits[0], class_logits[0],
                                               matched_slot_per_gt_mask)

    per_output = []
    for i, prefix in enumerate([""] + [f"aux_{j}" for j in range(len(heads) - 1)]):
      terms = {}
      if self.instance_discrimination_loss_weight > 0:
        terms[INSTANCE_DISCRIMINATION_LOSS] = self._instance_discrimination(
            features[i], gt, None if instance_discrimination_sample_indices is None
            else instance_discrimination_sample_indices[i])
      if self.pq_style_loss_weight > 0:
        terms[PQ_STYLE_LOSS_MASK_DICE_TERM] = pq_style_mask_dice_term(
            mask_logits[i], targets.pixel_slot_target, gt.pixel_in_mask,
            targets.slot_dice_weight, self.focal_loss_alpha, self.pq_style_loss_weight)
        terms[PQ_STYLE_LOSS_CLASS_TERM] = pq_style_class_term(
            class_logits[i], targets.slot_class_target, targets.slot_class_weight,
            self.focal_loss_alpha, self.pq_style_loss_weight)
      if self.mask_id_cross_entropy_loss_weight > 0:
        terms[MASK_ID_CROSS_ENTROPY_LOSS] = mask_id_cross_entropy_loss(
            mask_logits[i], targets.pixel_slot_target, gt.pixel_non_void,
            self.mask_id_cross_entropy_top_k_percent, self.mask_id_cross_entropy_loss_weight)
      per_output.append({prefix + k: v for k, v in terms.items()})

    result = {}
    for terms in per_output:
      result.update(terms)
    if self.semantic_loss_weight > 0:
      if semantic_sample_indices is None and self.semantic_sample_k > 0:
        semantic_sample_indices = gumbel_top_k(
            size_balanced_logits(gt.pixel_inverse_mask_area, gt.pixel_non_void,
                                 self.semantic_sample_temperature),
            min(self.semantic_sample_k, num_pixels))
      result[SEMANTIC_LOSS] = semantic_loss(
          tf.cast(y_pred[outputs.SEMANTIC_LOGITS], tf.float32), y_true[GT_SEMANTIC],
          y_true[GT_SEMANTIC_LOSS_WEIGHT], self.num_classes, self.ignore_label,
          self.semantic_top_k_percent, self.semantic_loss_weight, semantic_sample_indices)
    names = self.loss_names[:-1]
    result = {k: result[k] for k in names}
    result[TOTAL_LOSS] = tf.add_n(list(result.values()))
    return result

  def _auxiliary_outputs(self, y_pred):
    auxiliary = tuple(y_pred.get(outputs.AUXILIARY_OUTPUTS, ())) if self.auxiliary_output_number else ()
    if len(auxiliary) != self.auxiliary_output_number:
      raise ValueError(
          f"Expected {self.auxiliary_output_number} auxiliary outputs under "
          f"'{outputs.AUXILIARY_OUTPUTS}', got {len(auxiliary)}.")
    return auxiliary

  def _instance_discrimination(self, feature, gt, sample_indices):
    if self.instance_discrimination_sample_k > 0:
      if sample_indices is None:
        sample_indices = gumbel_top_k(
            size_balanced_logits(gt.pixel_inverse_mask_area, gt.pixel_non_void,
                                 self.instance_discrimination_sample_temperature),
            min(self.instance_discrimination_sample_k, feature.shape[1]))
      return pixel_contrastive_instance_discrimination_loss(
          feature, gt.pixel_mask_one_hot, sample_indices,
          self.instance_discrimination_temperature,
          self.instance_discrimination_top_k_percent, self.instance_discrimination_loss_weight)
    return mask_average_instance_discrimination_loss(
        feature, gt.pixel_mask_one_hot, gt.mask_area, gt.mask_non_void, gt.pixel_thing,
        self.instance_discrimination_temperature, self.instance_discrimination_top_k_percent,
        self.instance_discrimination_loss_weight)

  @staticmethod
  def average_over_batch(losses: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Batch mean of each term with NaN replaced by 0, as DeepLab2's trainer reports.

    Under a distribution strategy divide the total by the number of replicas
    before taking gradients.

    Args:
      losses: loss name -> [batch] float per-image loss (as returned by call).

    Returns:
      loss name -> scalar float batch mean.
    """
    means = {}
    for name, value in losses.items():
      mean = tf.reduce_mean(value)
      means[name] = tf.where(tf.math.is_nan(mean), tf.zeros_like(mean), mean)
    return means

  def get_config(self):
    config = super().get_config()
    config.update(
        num_classes=self.num_classes,
        ignore_label=self.ignore_label,
        thing_class_ids=list(self.thing_class_ids),
        pq_style_loss_weight=self.pq_style_loss_weight,
        mask_id_cross_entropy_loss_weight=self.mask_id_cross_entropy_loss_weight,
        instance_discrimination_loss_weight=self.instance_discrimination_loss_weight,
        semantic_loss_weight=self.semantic_loss_weight,
        mask_id_cross_entropy_top_k_percent=self.mask_id_cross_entropy_top_k_percent,
        instance_discrimination_top_k_percent=self.instance_discrimination_top_k_percent,
        semantic_top_k_percent=self.semantic_top_k_percent,
        focal_loss_alpha=self.focal_loss_alpha,
        instance_discrimination_temperature=self.instance_discrimination_temperature,
        instance_discrimination_sample_k=self.instance_discrimination_sample_k,
        instance_discrimination_sample_temperature=self.instance_discrimination_sample_temperature,
        semantic_sample_k=self.semantic_sample_k,
        semantic_sample_temperature=self.semantic_sample_temperature,
        auxiliary_output_number=self.auxiliary_output_number)
    return config
