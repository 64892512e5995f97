"""kmax_tf.layers: small reusable layers shared by the kMaX-DeepLab components.

kMaX-DeepLab: Qihang Yu et al., "k-means Mask Transformer", ECCV 2022 (arXiv:2207.04044).
"""
