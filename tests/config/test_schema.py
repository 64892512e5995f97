"""Message names, field numbers and DeepLab2 default values of the schema."""
import pytest

from kmax_tf.config import schema


def test_top_level_message_names():
  fields = schema.ExperimentOptions.DESCRIPTOR.fields_by_name
  assert {name: (f.number, f.message_type and f.message_type.name)
          for name, f in fields.items()} == {
              "experiment_name": (1, None),
              "model_options": (2, "ModelOptions"),
              "trainer_options": (3, "TrainerOptions"),
              "train_dataset_options": (4, "DatasetOptions"),
              "evaluator_options": (5, "EvaluatorOptions"),
              "eval_dataset_options": (6, "DatasetOptions"),
          }


@pytest.mark.parametrize("path,expected", [
    ("trainer_options.solver_options.use_sync_batchnorm", True),
    ("trainer_options.solver_options.batchnorm_momentum", 0.99),
    ("trainer_options.solver_options.batchnorm_epsilon", 0.001),
    ("trainer_options.solver_options.learning_policy", "poly"),
    ("trainer_options.solver_options.base_learning_rate", 1e-3),
    ("trainer_options.solver_options.poly_learning_power", 0.9),
    ("trainer_options.solver_options.optimizer", "adam"),
    ("trainer_options.solver_options.training_number_of_steps", 60000),
    ("trainer_options.solver_options.clip_gradient_norm", 10.0),
    ("trainer_options.solver_options.backbone_learning_rate_multiplier", 1.0),
    ("trainer_options.num_checkpoints_to_keep", 5),
    ("trainer_options.save_summaries_steps", 1000),
    ("trainer_options.steps_per_loop", 1000),
    ("trainer_options.loss_options.semantic_loss.weight", 1.0),
    ("trainer_options.loss_options.semantic_loss.top_k_percent", 1.0),
    ("model_options.backbone.name", "resnet50"),
    ("model_options.backbone.output_stride", 32),
    ("model_options.backbone.drop_path_keep_prob", 1.0),
    ("model_options.backbone.drop_path_schedule", "constant"),
    ("model_options.backbone.use_sac_beyond_stride", -1),
    ("model_options.decoder.decoder_channels", 256),
    ("model_options.decoder.aspp_channels", 256),
    ("model_options.decoder.decoder_conv_type", "depthwise_separable_conv"),
    ("model_options.max_deeplab.pixel_space_head.head_conv_type",
     "depthwise_separable_conv"),
    ("model_options.max_deeplab.instance_discrimination_sample_k", 0),
    ("model_options.max_deeplab.instance_discrimination_sample_temperature",
     0.6),
    ("model_options.max_deeplab.semantic_sample_temperature", 1.0),
    ("model_options.restore_semantic_last_layer_from_initial_checkpoint",
     True),
    ("train_dataset_options.batch_size", 32),
    ("train_dataset_options.max_thing_id", 128),
    ("train_dataset_options.small_instance_threshold", 4096),
    ("train_dataset_options.small_instance_weight", 3.0),
    ("train_dataset_options.thing_id_mask_annotations", False),
    ("train_dataset_options.decode_groundtruth_label", True),
    ("train_dataset_options.augmentations.min_scale_factor", 1.0),
    ("train_dataset_options.augmentations.scale_factor_step_size", 0.25),
    ("train_dataset_options.augmentations.panoptic_copy_paste"
     ".panoptic_copy_paste_thing_option", "random"),
    ("train_dataset_options.augmentations.panoptic_copy_paste"
     ".panoptic_copy_paste_void_option", "none"),
    ("evaluator_options.eval_steps", -1),
    ("evaluator_options.eval_interval", 5000),
    ("evaluator_options.transformer_class_confidence_threshold", 0.7),
    ("evaluator_options.pixel_confidence_threshold", 0.4),
    ("evaluator_options.transformer_post_processing", "pixelwise"),
    ("evaluator_options.maskwise_postprocessing.overlapping_threshold", 0.5),
    ("evaluator_options.maskwise_postprocessing.reorder_mask_weight", 0.0),
    ("evaluator_options.raw_panoptic_format", "two_channel_png"),
    ("evaluator_options.convert_raw_to_eval_ids", True),
])
def test_deeplab2_default_values(path, expected):
  value = schema.ExperimentOptions()
  for name in path.split("."):
    value = getattr(value, name)
  assert value == pytest.approx(expected)


def test_kmax_fields_have_presence_and_no_default():
  kmax = schema.ExperimentOptions().model_options.kmax_deeplab
  assert kmax.DESCRIPTOR.full_name == (
      "kmax_tf.ModelOptions.KMaXDeepLabOptions")
  for name in ("num_mask_slots", "high_resolution_output_stride",
               "use_auxiliary_semantic_decoder",
               "transformer_decoder_drop_path_keep_prob"):
    assert not kmax.HasField(name)
    assert not kmax.DESCRIPTOR.fields_by_name[name].has_default_value


def test_get_message_class_accepts_short_and_full_names():
  assert (schema.get_message_class("DatasetOptions") is
          schema.get_message_class("kmax_tf.DatasetOptions"))
  with pytest.raises(KeyError):
    schema.get_message_class("PanopticDeeplabOptions")
