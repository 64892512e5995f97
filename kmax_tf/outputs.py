"""Names of model outputs: one module, DeepLab2's names .

Keeping DeepLab2's strings means code written against DeepLab2 result dicts
(losses, evaluators, notebooks) reads ours unchanged.
"""

# Raw network outputs.
SEMANTIC_LOGITS = "semantic_logits"
PIXEL_SPACE_MASK_LOGITS = "pixel_space_mask_logits"
TRANSFORMER_CLASS_LOGITS = "transformer_class_logits"
PIXEL_SPACE_NORMALIZED_FEATURE = "pixel_space_normalized_feature"
AUXILIARY_OUTPUTS = "auxiliary_outputs_pred"

# Post-processed outputs.
PANOPTIC_PRED = "panoptic_pred"
SEMANTIC_PRED = "semantic_pred"
INSTANCE_PRED = "instance_pred"
INSTANCE_SCORES = "instance_scores"
SEMANTIC_SCORES = "semantic_scores"
# Per-slot tables of the mask-wise post-processor, [B, N], indexed by paste
# position (instance_pred - 1): the panoptic id a slot's pasted pixels carry
# (void when the slot was dropped) and the slot's class confidence. Summaries of
# the maps (kmax_tf.export.segment_table) read these instead of reducing
# per-pixel maps.
PASTED_SLOT_PANOPTIC_IDS = "pasted_slot_panoptic_ids"
PASTED_SLOT_SCORES = "pasted_slot_scores"

# Intermediate features passed between components.
TRANSFORMER_CLASS_FEATURE = "transformer_class_feature"
TRANSFORMER_MASK_FEATURE = "transformer_mask_feature"
FEATURE_PANOPTIC = "feature_panoptic"
FEATURE_SEMANTIC = "feature_semantic"

RAW_OUTPUTS = (SEMANTIC_LOGITS, PIXEL_SPACE_MASK_LOGITS, TRANSFORMER_CLASS_LOGITS,
               PIXEL_SPACE_NORMALIZED_FEATURE)
POST_PROCESSED_OUTPUTS = (PANOPTIC_PRED, SEMANTIC_PRED, INSTANCE_PRED, INSTANCE_SCORES)
