"""Named ConvNeXt sizes (Liu et al., "A ConvNet for the 2020s", CVPR 2022).

Keys are DeepLab2's pixel-encoder names: a kMaX-DeepLab config backbone name such
as `kmax_convnext_tiny` minus its `kmax_` prefix. Use as
`ConvNeXt(**CONVNEXT_SIZES["convnext_tiny"], drop_path_keep_prob=...)`.
Encoder parameter counts (DeepLab2, zero-padded kMaX variant, no head):
tiny 27,818,592; small 49,453,152; base 87,564,416; large 196,227,264;
xlarge 348,143,872.
"""

CONVNEXT_SIZES = {
    "convnext_tiny": {"depths": (3, 3, 9, 3), "dims": (96, 192, 384, 768)},
    "convnext_small": {"depths": (3, 3, 27, 3), "dims": (96, 192, 384, 768)},
    "convnext_base": {"depths": (3, 3, 27, 3), "dims": (128, 256, 512, 1024)},
    "convnext_large": {"depths": (3, 3, 27, 3), "dims": (192, 384, 768, 1536)},
    "convnext_xlarge": {"depths": (3, 3, 27, 3), "dims": (256, 512, 1024, 2048)},
}
