"""Config fields of DeepLab2's schema that kmax_tf parses but does not implement.

DeepLab2's ExperimentOptions also configures Panoptic-DeepLab, MaX-DeepLab and
video models. A field listed here changes nothing in a kMaX-DeepLab run, so a
config that gives it a non-default value is refused with the reason, instead
of being silently ignored. Each reason was checked against DeepLab2 64bc1c1
(google-research/deeplab2); none of DeepLab2's kMaX-DeepLab configs sets one of
these fields to a non-default value.
"""
from typing import Mapping

from kmax_tf.config.config_error import ConfigError

_ENCODER = ("configures DeepLab2's generic Axial-ResNet / SWideRNet / MobileNet builders; "
            "kMaX-DeepLab's encoders, named by backbone.name, have fixed architectures "
            "(DeepLab2's kMaX-DeepLab does not read it either)")
_PANOPTIC_DEEPLAB = ("belongs to Panoptic-DeepLab, which has center / offset heads that "
                     "kMaX-DeepLab lacks")
_VIDEO = "belongs to DeepLab2's video and depth models (Motion-/ViP-DeepLab)"
_RAW = ("is part of DeepLab2's raw / visualisation dumps; save_predictions writes the "
        "dataset's official result format (COCO panoptic PNG + JSON, or Cityscapes' files) "
        "instead")
_TTA = ("is test-time augmentation, which DeepLab2 implements only for Panoptic-DeepLab "
        "(model/deeplab.py); DeepLab2's kMaX-DeepLab ignores it")

NO_EFFECT: Mapping[str, str] = {
    "model_options.backbone.output_stride": _ENCODER,
    "model_options.backbone.use_squeeze_and_excite": _ENCODER,
    "model_options.backbone.drop_path_schedule": _ENCODER,
    "model_options.backbone.stem_width_multiplier": _ENCODER,
    "model_options.backbone.backbone_width_multiplier": _ENCODER,
    "model_options.backbone.backbone_layer_multiplier": _ENCODER,
    "model_options.backbone.use_sac_beyond_stride": _ENCODER,
    "model_options.max_deeplab.pixel_space_head.max_value_after_activation": _VIDEO,
    "model_options.max_deeplab.pixel_space_head.min_value_after_activation": _VIDEO,
    "model_options.max_deeplab.auxiliary_semantic_head.max_value_after_activation": _VIDEO,
    "model_options.max_deeplab.auxiliary_semantic_head.min_value_after_activation": _VIDEO,
    "model_options.restore_semantic_last_layer_from_initial_checkpoint": (
        "is decided by the checkpoint: kmax_tf restores the class-dependent last layers when "
        "the initial checkpoint's class count matches the dataset's, and starts them fresh "
        "(logged) otherwise"),
    "model_options.restore_instance_last_layer_from_initial_checkpoint": _PANOPTIC_DEEPLAB,
    "trainer_options.loss_options.center_loss": _PANOPTIC_DEEPLAB,
    "trainer_options.loss_options.regression_loss": _PANOPTIC_DEEPLAB,
    "trainer_options.loss_options.motion_loss": _VIDEO,
    "trainer_options.loss_options.next_regression_loss": _VIDEO,
    "trainer_options.loss_options.depth_loss": _VIDEO,
    "train_dataset_options.use_two_frames": _VIDEO,
    "train_dataset_options.use_next_frame": _VIDEO,
    "train_dataset_options.cameras_to_use": _VIDEO,
    "eval_dataset_options.use_two_frames": _VIDEO,
    "eval_dataset_options.use_next_frame": _VIDEO,
    "eval_dataset_options.cameras_to_use": _VIDEO,
    "evaluator_options.use_tf_function": (
        "is always on: the evaluator runs the model as a tf.function"),
    "evaluator_options.transformer_class_confidence_threshold": (
        "is read only by MaX-DeepLab's 'pixelwise' post-processing; kMaX's mask-wise one uses "
        "evaluator_options.maskwise_postprocessing.transformer_class_confidence_threshold_"
        "{thing,stuff}"),
    "evaluator_options.center_score_threshold": _PANOPTIC_DEEPLAB,
    "evaluator_options.nms_kernel": _PANOPTIC_DEEPLAB,
    "evaluator_options.keep_k_centers": _PANOPTIC_DEEPLAB,
    "evaluator_options.merge_semantic_and_instance_with_tf_op": _PANOPTIC_DEEPLAB,
    "evaluator_options.num_vis_samples": _RAW,
    "evaluator_options.save_raw_predictions": _RAW,
    "evaluator_options.raw_panoptic_format": _RAW,
    "evaluator_options.convert_raw_to_eval_ids": _RAW,
    "evaluator_options.add_flipped_images": _TTA,
    "evaluator_options.eval_scales": _TTA,
}

_TRANSFORMER_POST_PROCESSING = "evaluator_options.transformer_post_processing"
# Read and checked here rather than by the model: only one value is implemented.
VALIDATED = (_TRANSFORMER_POST_PROCESSING,)


def _lookup(message, path):
  """(parent message, field name) of a dotted path, or None when a parent is unset."""
  *parents, name = path.split(".")
  for part in parents:
    if not message.HasField(part):
      return None
    message = getattr(message, part)
  return message, name


def _has_effect_value(message, name) -> bool:
  field = message.DESCRIPTOR.fields_by_name[name]
  value = getattr(message, name)
  if field.message_type is not None and not _is_repeated(value):
    return message.HasField(name)
  if _is_repeated(value):
    if name == "eval_scales":  # DeepLab2 reads an empty list as [1.0]
      return list(value) not in ([], [1.0])
    return len(value) > 0
  return message.HasField(name) and value != field.default_value


def _is_repeated(value) -> bool:
  return hasattr(value, "__len__") and not isinstance(value, (str, bytes))


def check_fields_have_effect(config, source: str = "<config>") -> None:
  """Raises ConfigError naming every field set to a value that would change nothing."""
  problems = []
  for path, reason in NO_EFFECT.items():
    found = _lookup(config, path)
    if found is not None and _has_effect_value(*found):
      problems.append(f"{path} is set but has no effect in kmax_tf: it {reason}.")
  options = config.evaluator_options
  if (options.HasField("transformer_post_processing")
      and options.transformer_post_processing != "maskwise"):
    problems.append(
        f"{_TRANSFORMER_POST_PROCESSING} is {options.transformer_post_processing!r}; kmax_tf "
        "implements kMaX-DeepLab's 'maskwise' post-processing only (every kMaX-DeepLab config "
        "sets it), and uses it when the field is unset.")
  if problems:
    raise ConfigError(f"{source}: " + "\n  ".join(problems))
