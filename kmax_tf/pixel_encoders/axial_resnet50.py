"""Axial-ResNet-50 pixel encoder of kMaX-DeepLab.

DeepLab2's `axial_resnet50`, the MaX-DeepLab-S backbone (Wang et al., CVPR
2021): inception stem, GELU, axial-attention blocks (Axial-DeepLab, ECCV 2020)
for every block whose input stride is >= 16, output stride 32; see
`axial_resnet.AxialResNet`.
"""
from kmax_tf.pixel_encoders import axial_resnet


def axial_resnet50(drop_path_keep_prob: float = 1.0,
                   name: str = "axial_resnet50") -> axial_resnet.AxialResNet:
  """Builds DeepLab2's axial-ResNet-50 (MaX-DeepLab-S backbone); arguments as resnet50's."""
  return axial_resnet.AxialResNet(
      stem_type="inception", use_axial_beyond_stride=16, activation="gelu",
      num_blocks=(3, 4, 6, 3), drop_path_keep_prob=drop_path_keep_prob, name=name)
