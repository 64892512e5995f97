"""Names of the input pipeline's sample entries: DeepLab2's names.

Keeping DeepLab2's strings lets losses and evaluators written against
DeepLab2's sample dicts read kmax_tf's unchanged.
"""

IMAGE = "image"
IMAGE_NAME = "image_name"

# Training targets (crop-sized).
SEMANTIC_GT = "semantic_gt"
SEMANTIC_LOSS_WEIGHT = "semantic_loss_weight"
PANOPTIC_GT = "panoptic_gt"
IS_CROWD_GT = "is_crowd_gt"
THING_ID_MASK_GT = "thing_id_mask_gt"
THING_ID_CLASS_GT = "thing_id_class_gt"
# Panoptic-DeepLab targets (DeepLab2 always makes them; kMaX does not use them).
CENTER_LOSS_WEIGHT = "center_loss_weight"
REGRESSION_LOSS_WEIGHT = "regression_loss_weight"
INSTANCE_CENTER_GT = "instance_center_gt"
INSTANCE_REGRESSION_GT = "instance_regression_gt"

# Evaluation extras: the labels at the original image size.
SIZE_RAW = "size_raw"
SEMANTIC_RAW = "semantic_raw"
PANOPTIC_RAW = "panoptic_raw"
IS_CROWD_RAW = "is_crowd_raw"
