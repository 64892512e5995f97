"""kmax_tf.checkpoints: kmax_tf checkpoints and DeepLab2's, mapped name by name.

kMaX-DeepLab: Qihang Yu et al., "k-means Mask Transformer", ECCV 2022 (arXiv:2207.04044).
"""
