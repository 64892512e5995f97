"""kMaX-DeepLab / MaX-DeepLab training losses.

kMaX-DeepLab: Qihang Yu et al., "k-means Mask Transformer", ECCV 2022 (arXiv:2207.04044).
MaX-DeepLab: Wang et al., "MaX-DeepLab: End-to-End Panoptic Segmentation with Mask
Transformers", CVPR 2021.

kmax_loss.KMaXLoss combines every term (with deep supervision); the other
modules hold the pieces: hungarian_matcher (in-graph optimal assignment),
mask_ground_truth (targets as a padded mask set), matched_targets (matching and
per-slot targets), pq_style_loss, mask_id_cross_entropy_loss,
instance_discrimination_loss, semantic_loss, pixel_sampling, nonzero_mean and
strided_downsample.
"""
