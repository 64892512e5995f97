"""kmax_tf: kMaX-DeepLab (Yu et al., "k-means Mask Transformer", ECCV 2022) in TensorFlow.

Public API (stable names):
  load_config(path, overrides=())      -> parsed experiment config
  build_model(config)                  -> tf_keras.Model (kMaX-DeepLab)
  load_deeplab2_checkpoint(model, path) -> fills the model from a DeepLab2 checkpoint
"""

__version__ = "0.1.0"


def load_config(path, overrides=()):
  """Parses an experiment textproto strictly; `overrides` are 'dotted.field=value' strings.

  Args:
    path: experiment config file (ExperimentOptions textproto).
    overrides: field assignments applied after parsing, e.g.
      'train_dataset_options.batch_size=8'.
  """
  from kmax_tf.config import loader  # pylint: disable=g-import-not-at-top
  return loader.load_config(path, overrides)


def build_model(config, **kwargs):
  """Builds (and creates the variables of) the kMaX-DeepLab model for `config`.

  Args:
    config: ExperimentOptions (load_config).
    **kwargs: see kmax_tf.model_builder.build_model (synchronized_batch_norm,
      input_size, for_training).
  """
  from kmax_tf import model_builder  # pylint: disable=g-import-not-at-top
  return model_builder.build_model(config, **kwargs)


def load_deeplab2_checkpoint(model, path, **kwargs):
  """Fills `model` from a DeepLab2 kMaX checkpoint (model-only, trainer or backbone
  layout) or, for MOAT encoders, a DeepLab2 MOAT ImageNet checkpoint.

  Args:
    model: a built KMaXDeepLab.
    path: checkpoint prefix.
    **kwargs: see deeplab2_checkpoint_reader.load_deeplab2_checkpoint (e.g.
      skip_class_layers).
  """
  from kmax_tf.checkpoints import deeplab2_checkpoint_reader  # pylint: disable=g-import-not-at-top
  return deeplab2_checkpoint_reader.load_deeplab2_checkpoint(
      model.deeplab2_variable_map(), path,
      imagenet_variable_map=model.deeplab2_imagenet_variable_map(), **kwargs)
