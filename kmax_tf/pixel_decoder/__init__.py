"""kmax_tf.pixel_decoder: the enhanced pixel decoder (axial attention, strides 32 to 4).

kMaX-DeepLab: Qihang Yu et al., "k-means Mask Transformer", ECCV 2022 (arXiv:2207.04044).
"""
