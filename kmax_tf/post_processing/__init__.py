"""kmax_tf.post_processing: mask-wise merging of kMaX-DeepLab's masks into panoptic maps.

kMaX-DeepLab: Qihang Yu et al., "k-means Mask Transformer", ECCV 2022 (arXiv:2207.04044).
"""
