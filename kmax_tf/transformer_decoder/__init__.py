"""kmax_tf.transformer_decoder: the kMaX transformer decoder (k-means cross-attention).

kMaX-DeepLab: Qihang Yu et al., "k-means Mask Transformer", ECCV 2022 (arXiv:2207.04044).
"""
