"""KMaXDeepLab under tf_keras mixed precision (trainer.py --mixed_precision=bfloat16).

Every tensor the model creates itself (one-hot cluster assignments, the void
prior of the class logits, bilinear resizes, which TF returns as float32) must
follow the compute dtype, or a mixed-precision build fails with a dtype error.
"""
import os

import numpy as np
import tensorflow as tf
import tf_keras

import kmax_tf
from kmax_tf import outputs as keys

_CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "coco", "kmax_r50.textproto")


def test_bfloat16_build_runs_training_and_inference():
  tf_keras.mixed_precision.set_global_policy("mixed_bfloat16")
  try:
    config = kmax_tf.load_config(_CONFIG, ["eval_dataset_options.crop_size=65,65",
                                           "train_dataset_options.crop_size=65,65"])
    model = kmax_tf.build_model(config, for_training=True)
    images = tf.constant(np.random.RandomState(0).uniform(0, 255, [1, 65, 65, 3]), tf.float32)
    train = model(images, training=True)
    assert train[keys.PIXEL_SPACE_MASK_LOGITS].dtype == tf.bfloat16
    assert len(train[keys.AUXILIARY_OUTPUTS]) == 6
    assert np.isfinite(tf.cast(train[keys.SEMANTIC_LOGITS], tf.float32).numpy()).all()
    inference = model(images, training=False)
    panoptic = inference[keys.PANOPTIC_PRED].numpy()
    assert panoptic.shape == (1, 65, 65)
    assert all(v.dtype == tf.float32 for v in model.trainable_variables)
  finally:
    tf_keras.mixed_precision.set_global_policy("float32")
