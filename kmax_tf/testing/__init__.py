"""kmax_tf.testing: DeepLab2 parity fixtures and checkpoint writers for tests and benchmarks.

kMaX-DeepLab: Qihang Yu et al., "k-means Mask Transformer", ECCV 2022 (arXiv:2207.04044).
"""
