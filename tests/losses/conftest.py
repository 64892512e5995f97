"""The DeepLab2 loss fixture (deeplab2_parity README section 4) as loss inputs."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from kmax_tf import outputs
from kmax_tf.layers.align_corners_resize import resize_features
from kmax_tf.losses import kmax_loss
from kmax_tf.testing import deeplab2_fixtures

COCO_THING_CLASS_IDS = tuple(range(1, 81))
COCO_NUM_CLASSES = 134
COCO_IGNORE_LABEL = 0
TARGET_KEYS = (kmax_loss.GT_SEMANTIC, kmax_loss.GT_SEMANTIC_LOSS_WEIGHT,
               kmax_loss.GT_THING_ID_MASK, kmax_loss.GT_THING_ID_CLASS)
NATIVE_KEYS = (outputs.PIXEL_SPACE_MASK_LOGITS, outputs.PIXEL_SPACE_NORMALIZED_FEATURE)


class LossFixture:
  """Arrays and reference values of loss/loss_coco_r50.npz + _meta.json."""

  def __init__(self):
    folder = os.path.join(deeplab2_fixtures.parity_dir(), "loss")
    self.arrays = np.load(os.path.join(folder, "loss_coco_r50.npz"))
    with open(os.path.join(folder, "loss_coco_r50_meta.json")) as f:
      self.meta = json.load(f)
    self.y_true = {k: tf.constant(self.arrays[f"target/{k}"]) for k in TARGET_KEYS}
    y_pred = {k: tf.constant(self.arrays[f"pred/{k}"]) for k in outputs.RAW_OUTPUTS}
    size = y_pred[outputs.PIXEL_SPACE_MASK_LOGITS].shape[1:3]
    auxiliary = []
    for i in range(6):
      head = {outputs.TRANSFORMER_CLASS_LOGITS:
              tf.constant(self.arrays[f"pred_aux{i}/{outputs.TRANSFORMER_CLASS_LOGITS}"])}
      for k in NATIVE_KEYS:
        # What the model hands the loss in training mode (README: this resize
        # of the stored native outputs reproduces DeepLab2's loss inputs exactly).
        head[k] = resize_features(
            tf.constant(self.arrays[f"pred_aux{i}/{k}_native"]), size)
      auxiliary.append(head)
    y_pred[outputs.AUXILIARY_OUTPUTS] = tuple(auxiliary)
    self.y_pred = y_pred
    self.matching = tf.constant(self.arrays["hungarian/matched_slot_per_gt_mask"])
    self.sample_indices = [tf.constant(self.arrays[f"sampling_seed0/call{j}_indices"])
                           for j in range(7)]

  def results(self, variant):
    """(per-image {term: [2]}, batch mean {term: scalar}) of a stored variant."""
    per_image, batch_mean = self.meta["results"][variant]
    return ({k: np.asarray(v, np.float64) for k, v in per_image.items()},
            {k: float(v) for k, v in batch_mean.items()})


@pytest.fixture(scope="session")
def loss_fixture():
  return LossFixture()


def _coco_loss(**kwargs):
  settings = dict(num_classes=COCO_NUM_CLASSES, ignore_label=COCO_IGNORE_LABEL,
                  thing_class_ids=COCO_THING_CLASS_IDS, pq_style_loss_weight=3.0,
                  mask_id_cross_entropy_loss_weight=0.3, instance_discrimination_loss_weight=1.0,
                  semantic_loss_weight=1.0, instance_discrimination_sample_k=4096,
                  instance_discrimination_sample_temperature=1.5, auxiliary_output_number=6)
  settings.update(kwargs)
  return kmax_loss.KMaXLoss(**settings)


@pytest.fixture(scope="session")
def coco_loss():
  """Factory of KMaXLoss with the COCO kMaX R50 config's loss settings (README section 4)."""
  return _coco_loss
