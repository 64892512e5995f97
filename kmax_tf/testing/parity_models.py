"""Builds kmax_tf models exactly as the DeepLab2 parity fixtures were built.

`../shared/fixtures/deeplab2_parity/README.md`: DeepLab2's own textprotos, crop
257x257 (min/max resize 257), no initial or pretrained checkpoints, backbone
drop path 1.0; BN is DeepLab2's synchronized (non-fused) batch norm.
"""
import os

import kmax_tf
from kmax_tf.testing import deeplab2_fixtures as fx

FIXTURE_CONFIGS = {
    "coco_r50": "coco/kmax_deeplab/kmax_meta_r50_os32.textproto",
    "coco_convnext_tiny": "coco/kmax_deeplab/kmax_meta_convnext_tiny_os32.textproto",
    "coco_axial_r50": "coco/kmax_deeplab/kmax_meta_axial_r50_os32.textproto",
    "cityscapes_r50": "cityscapes/kmax_deeplab/kmax_meta_r50_os32.textproto",
    # DeepLab2 has no MOAT config: its ConvNeXt-T COCO config with the backbone
    # renamed (tests/testdata/deeplab2_moat/README.md).
    "coco_tiny_moat0": "coco/kmax_deeplab/kmax_meta_convnext_tiny_os32.textproto",
}
BACKBONE_NAMES = {"coco_tiny_moat0": "kmax_tiny_moat0_pretrain_256_1k"}
CROP = 257


def fixture_config(model_name, crop=CROP):
  path = os.path.join(fx.fixtures_dir(), "deeplab2_configs", FIXTURE_CONFIGS[model_name])
  overrides = []
  for split in ("train_dataset_options", "eval_dataset_options"):
    overrides += [f"{split}.crop_size={crop},{crop}", f"{split}.min_resize_value={crop}",
                  f"{split}.max_resize_value={crop}"]
  overrides += ["model_options.initial_checkpoint=", "model_options.backbone.drop_path_keep_prob=1.0"]
  if model_name in BACKBONE_NAMES:
    overrides += [f"model_options.backbone.name={BACKBONE_NAMES[model_name]}",
                  "model_options.backbone.pretrained_weights="]
  return kmax_tf.load_config(path, overrides)


def build_fixture_model(model_name, synchronized_batch_norm=True, crop=CROP):
  return kmax_tf.build_model(fixture_config(model_name, crop),
                             synchronized_batch_norm=synchronized_batch_norm)
