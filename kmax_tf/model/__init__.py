"""kmax_tf.model: the kMaX-DeepLab meta architecture.

kMaX-DeepLab: Qihang Yu et al., "k-means Mask Transformer", ECCV 2022 (arXiv:2207.04044).
"""
