"""Named MOAT and tiny-MOAT sizes (Yang et al., ICLR 2023) and DeepLab2's names.

`MOAT_SIZES[name]` holds the constructor arguments of `moat.MOAT` for the
encoder names "moat0".."moat4", "tiny_moat0".."tiny_moat3" and their
"_no_pe" variants (no relative position embedding). All use 2 stem convs,
stages of (MBConv, MBConv, MOAT, MOAT) blocks with strides 2, 2, 2, 2 after
the stride-2 stem, expansion 4, SE ratio 0.25 in MBConv, head size 32,
position embedding sizes 14 (stride 16) and 7 (stride 32).

`DEEPLAB2_BACKBONE_NAMES` maps the names DeepLab2's `moat.get_model` accepts
(a kMaX config writes them with the prefix "kmax_") to these encoder names.
DeepLab2's kMaX builder passes the config's drop_path_keep_prob as the
survival rate, so the per-name survival probabilities of DeepLab2's
ImageNet recipes never apply to kMaX-DeepLab and are not kept here.

`IMAGENET_INPUT_NORMALIZATION` is the input normalization each ImageNet
checkpoint family was trained with (DeepLab2's MOAT checkpoint table:
"option 1" ImageNet mean/std for MOAT-0/1 and all tiny-MOATs, "option 2"
x/127.5-1 for MOAT-2/3/4). DeepLab2's kMaX-DeepLab feeds x/127.5-1 to every
encoder; `moat.INPUT_NORMALIZATIONS` lists both.
"""
import types

_BASE = {
    "block_types": ("mbconv", "mbconv", "moat", "moat"),
}

_ARCHITECTURES = {
    "moat0": ((64, 64), (2, 3, 7, 2), (96, 192, 384, 768)),
    "moat1": ((64, 64), (2, 6, 14, 2), (96, 192, 384, 768)),
    "moat2": ((128, 128), (2, 6, 14, 2), (128, 256, 512, 1024)),
    "moat3": ((160, 160), (2, 12, 28, 2), (160, 320, 640, 1280)),
    "moat4": ((256, 256), (2, 12, 28, 2), (256, 512, 1024, 2048)),
    "tiny_moat0": ((32, 32), (2, 3, 7, 2), (32, 64, 128, 256)),
    "tiny_moat1": ((40, 40), (2, 3, 7, 2), (40, 80, 160, 320)),
    "tiny_moat2": ((56, 56), (2, 3, 7, 2), (56, 112, 224, 448)),
    "tiny_moat3": ((80, 80), (2, 3, 7, 2), (80, 160, 320, 640)),
}


def _sizes():
  sizes = {}
  for name, (stem, blocks, hidden) in _ARCHITECTURES.items():
    base = dict(_BASE, stem_sizes=stem, num_blocks=blocks, hidden_sizes=hidden)
    sizes[name] = types.MappingProxyType(dict(base, use_position_embedding=True))
    sizes[name + "_no_pe"] = types.MappingProxyType(dict(base, use_position_embedding=False))
  return types.MappingProxyType(sizes)


MOAT_SIZES = _sizes()

# DeepLab2 moat.get_model name (the ImageNet checkpoint it was written for).
_CHECKPOINT_NAMES = {
    "moat0": "moat0_pretrain_224{pe}_1k",
    "moat1": "moat1_pretrain_224{pe}_1k",
    "moat2": "moat2_finetune_384{pe}_22k",
    "moat3": "moat3_finetune_512{pe}_22k",
    "moat4": "moat4_finetune_512{pe}_22k",
    "tiny_moat0": "tiny_moat0_pretrain_256{pe}_1k",
    "tiny_moat1": "tiny_moat1_pretrain_256{pe}_1k",
    "tiny_moat2": "tiny_moat2_pretrain_256{pe}_1k",
    "tiny_moat3": "tiny_moat3_pretrain_256{pe}_1k",
}

DEEPLAB2_BACKBONE_NAMES = types.MappingProxyType({
    **{pattern.format(pe=""): name for name, pattern in _CHECKPOINT_NAMES.items()},
    **{pattern.format(pe="_no_pe"): name + "_no_pe"
       for name, pattern in _CHECKPOINT_NAMES.items()},
})

IMAGENET_INPUT_NORMALIZATION = types.MappingProxyType({
    name: ("inception" if name.startswith(("moat2", "moat3", "moat4")) else "imagenet")
    for name in MOAT_SIZES})
