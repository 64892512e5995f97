"""kmax_tf.pixel_encoders: ResNet-50, axial-ResNet-50, ConvNeXt and MOAT backbones.

kMaX-DeepLab: Qihang Yu et al., "k-means Mask Transformer", ECCV 2022 (arXiv:2207.04044).
Backbones: He et al., CVPR 2016 (ResNet); Wang et al., ECCV 2020 (axial-DeepLab);
Liu et al., CVPR 2022 (ConvNeXt); Yang et al., ICLR 2023 (MOAT).
"""
