"""kmax_tf.heads: the mask/class head, the auxiliary semantic decoder and head.

kMaX-DeepLab: Qihang Yu et al., "k-means Mask Transformer", ECCV 2022 (arXiv:2207.04044).
The heads follow MaX-DeepLab: Wang et al., "MaX-DeepLab: End-to-End Panoptic
Segmentation with Mask Transformers", CVPR 2021.
"""
