"""ResNet-50 pixel encoder of kMaX-DeepLab.

DeepLab2's `resnet50` (He et al., CVPR 2016, in DeepLab2's form: 7x7 stem
without max-pool, ReLU, output stride 32); see `axial_resnet.AxialResNet`.
"""
from kmax_tf.pixel_encoders import axial_resnet


def resnet50(drop_path_keep_prob: float = 1.0, name: str = "resnet50") -> axial_resnet.AxialResNet:
  """Builds DeepLab2's ResNet-50 encoder.

  Args:
    drop_path_keep_prob: keep probability of the stride-32 blocks (see
      axial_resnet.drop_path_keep_prob_at); 1.0 disables drop path.
    name: layer name.
  """
  return axial_resnet.AxialResNet(
      stem_type="resnet", use_axial_beyond_stride=0, activation="relu",
      num_blocks=(3, 4, 6, 3), drop_path_keep_prob=drop_path_keep_prob, name=name)
