"""kmax_tf.tools: checkpoint conversion from DeepLab2.

kMaX-DeepLab: Qihang Yu et al., "k-means Mask Transformer", ECCV 2022 (arXiv:2207.04044).
"""
