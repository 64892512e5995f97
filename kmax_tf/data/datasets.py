"""Label spaces of the panoptic datasets kMaX-DeepLab is trained on.

Datasets: COCO panoptic (Lin et al., ECCV 2014; Kirillov et al., CVPR 2019),
Cityscapes (Cordts et al., CVPR 2016), ADE20K (Zhou et al., CVPR 2017).

The values (class ids, thing classes, label divisors, ignore labels, colours,
evaluation ids, split sizes) are those DeepLab2 uses, so kmax_tf reads
DeepLab2 TFRecords and reproduces its metrics. Code never branches on a
dataset name: it asks get_dataset_descriptor(name) for the label space, and a
new dataset only needs a register_dataset(DatasetDescriptor(...)) call.
"""

import difflib
from typing import Dict, Sequence, Tuple

from kmax_tf.data.dataset_descriptor import Color
from kmax_tf.data.dataset_descriptor import DatasetDescriptor

COCO_PANOPTIC = "coco_panoptic"
CITYSCAPES_PANOPTIC = "cityscapes_panoptic"
ADE20K_PANOPTIC = "ade20k_panoptic"

# Rows: (dataset category id, name, is_thing, RGB colour).
_Row = Tuple[int, str, bool, Color]

# The 133 COCO panoptic categories in DeepLab2's order: training id i + 1 is
# row i (things first), training id 0 is void.
_COCO_CATEGORIES: Tuple[_Row, ...] = (
    (1, "person", True, (220, 20, 60)),
    (2, "bicycle", True, (119, 11, 32)),
    (3, "car", True, (0, 0, 142)),
    (4, "motorcycle", True, (0, 0, 230)),
    (5, "airplane", True, (106, 0, 228)),
    (6, "bus", True, (0, 60, 100)),
    (7, "train", True, (0, 80, 100)),
    (8, "truck", True, (0, 0, 70)),
    (9, "boat", True, (0, 0, 192)),
    (10, "traffic light", True, (250, 170, 30)),
    (11, "fire hydrant", True, (100, 170, 30)),
    (13, "stop sign", True, (220, 220, 0)),
    (14, "parking meter", True, (175, 116, 175)),
    (15, "bench", True, (250, 0, 30)),
    (16, "bird", True, (165, 42, 42)),
    (17, "cat", True, (255, 77, 255)),
    (18, "dog", True, (0, 226, 252)),
    (19, "horse", True, (182, 182, 255)),
    (20, "sheep", True, (0, 82, 0)),
    (21, "cow", True, (120, 166, 157)),
    (22, "elephant", True, (110, 76, 0)),
    (23, "bear", True, (174, 57, 255)),
    (24, "zebra", True, (199, 100, 0)),
    (25, "giraffe", True, (72, 0, 118)),
    (27, "backpack", True, (255, 179, 240)),
    (28, "umbrella", True, (0, 125, 92)),
    (31, "handbag", True, (209, 0, 151)),
    (32, "tie", True, (188, 208, 182)),
    (33, "suitcase", True, (0, 220, 176)),
    (34, "frisbee", True, (255, 99, 164)),
    (35, "skis", True, (92, 0, 73)),
    (36, "snowboard", True, (133, 129, 255)),
    (37, "sports ball", True, (78, 180, 255)),
    (38, "kite", True, (0, 228, 0)),
    (39, "baseball bat", True, (174, 255, 243)),
    (40, "baseball glove", True, (45, 89, 255)),
    (41, "skateboard", True, (134, 134, 103)),
    (42, "surfboard", True, (145, 148, 174)),
    (43, "tennis racket", True, (255, 208, 186)),
    (44, "bottle", True, (197, 226, 255)),
    (46, "wine glass", True, (171, 134, 1)),
    (47, "cup", True, (109, 63, 54)),
    (48, "fork", True, (207, 138, 255)),
    (49, "knife", True, (151, 0, 95)),
    (50, "spoon", True, (9, 80, 61)),
    (51, "bowl", True, (84, 105, 51)),
    (52, "banana", True, (74, 65, 105)),
    (53, "apple", True, (166, 196, 102)),
    (54, "sandwich", True, (208, 195, 210)),
    (55, "orange", True, (255, 109, 65)),
    (56, "broccoli", True, (0, 143, 149)),
    (57, "carrot", True, (179, 0, 194)),
    (58, "hot dog", True, (209, 99, 106)),
    (59, "pizza", True, (5, 121, 0)),
    (60, "donut", True, (227, 255, 205)),
    (61, "cake", True, (147, 186, 208)),
    (62, "chair", True, (153, 69, 1)),
    (63, "couch", True, (3, 95, 161)),
    (64, "potted plant", True, (163, 255, 0)),
    (65, "bed", True, (119, 0, 170)),
    (67, "dining table", True, (0, 182, 199)),
    (70, "toilet", True, (0, 165, 120)),
    (72, "tv", True, (183, 130, 88)),
    (73, "laptop", True, (95, 32, 0)),
    (74, "mouse", True, (130, 114, 135)),
    (75, "remote", True, (110, 129, 133)),
    (76, "keyboard", True, (166, 74, 118)),
    (77, "cell phone", True, (219, 142, 185)),
    (78, "microwave", True, (79, 210, 114)),
    (79, "oven", True, (178, 90, 62)),
    (80, "toaster", True, (65, 70, 15)),
    (81, "sink", True, (127, 167, 115)),
    (82, "refrigerator", True, (59, 105, 106)),
    (84, "book", True, (142, 108, 45)),
    (85, "clock", True, (196, 172, 0)),
    (86, "vase", True, (95, 54, 80)),
    (87, "scissors", True, (128, 76, 255)),
    (88, "teddy bear", True, (201, 57, 1)),
    (89, "hair drier", True, (246, 0, 122)),
    (90, "toothbrush", True, (191, 162, 208)),
    (92, "banner", False, (255, 255, 128)),
    (93, "blanket", False, (147, 211, 203)),
    (95, "bridge", False, (150, 100, 100)),
    (100, "cardboard", False, (168, 171, 172)),
    (107, "counter", False, (146, 112, 198)),
    (109, "curtain", False, (210, 170, 100)),
    (112, "door-stuff", False, (92, 136, 89)),
    (118, "floor-wood", False, (218, 88, 184)),
    (119, "flower", False, (241, 129, 0)),
    (122, "fruit", False, (217, 17, 255)),
    (125, "gravel", False, (124, 74, 181)),
    (128, "house", False, (70, 70, 70)),
    (130, "light", False, (255, 228, 255)),
    (133, "mirror-stuff", False, (154, 208, 0)),
    (138, "net", False, (193, 0, 92)),
    (141, "pillow", False, (76, 91, 113)),
    (144, "platform", False, (255, 180, 195)),
    (145, "playingfield", False, (106, 154, 176)),
    (147, "railroad", False, (230, 150, 140)),
    (148, "river", False, (60, 143, 255)),
    (149, "road", False, (128, 64, 128)),
    (151, "roof", False, (92, 82, 55)),
    (154, "sand", False, (254, 212, 124)),
    (155, "sea", False, (73, 77, 174)),
    (156, "shelf", False, (255, 160, 98)),
    (159, "snow", False, (255, 255, 255)),
    (161, "stairs", False, (104, 84, 109)),
    (166, "tent", False, (169, 164, 131)),
    (168, "towel", False, (225, 199, 255)),
    (171, "wall-brick", False, (137, 54, 74)),
    (175, "wall-stone", False, (135, 158, 223)),
    (176, "wall-tile", False, (7, 246, 231)),
    (177, "wall-wood", False, (107, 255, 200)),
    (178, "water-other", False, (58, 41, 149)),
    (180, "window-blind", False, (183, 121, 142)),
    (181, "window-other", False, (255, 73, 97)),
    (184, "tree-merged", False, (107, 142, 35)),
    (185, "fence-merged", False, (190, 153, 153)),
    (186, "ceiling-merged", False, (146, 139, 141)),
    (187, "sky-other-merged", False, (70, 130, 180)),
    (188, "cabinet-merged", False, (134, 199, 156)),
    (189, "table-merged", False, (209, 226, 140)),
    (190, "floor-other-merged", False, (96, 36, 108)),
    (191, "pavement-merged", False, (96, 96, 96)),
    (192, "mountain-merged", False, (64, 170, 64)),
    (193, "grass-merged", False, (152, 251, 152)),
    (194, "dirt-merged", False, (208, 229, 228)),
    (195, "paper-merged", False, (206, 186, 171)),
    (196, "food-other-merged", False, (152, 161, 64)),
    (197, "building-other-merged", False, (116, 112, 0)),
    (198, "rock-merged", False, (0, 114, 143)),
    (199, "wall-other-merged", False, (102, 102, 156)),
    (200, "rug-merged", False, (250, 141, 255)),
)

# The 19 Cityscapes training ids: label id of gtFine, name, is_thing, colour.
_CITYSCAPES_CATEGORIES: Tuple[_Row, ...] = (
    (7, "road", False, (128, 64, 128)),
    (8, "sidewalk", False, (244, 35, 232)),
    (11, "building", False, (70, 70, 70)),
    (12, "wall", False, (102, 102, 156)),
    (13, "fence", False, (190, 153, 153)),
    (17, "pole", False, (153, 153, 153)),
    (19, "traffic light", False, (250, 170, 30)),
    (20, "traffic sign", False, (220, 220, 0)),
    (21, "vegetation", False, (107, 142, 35)),
    (22, "terrain", False, (152, 251, 152)),
    (23, "sky", False, (70, 130, 180)),
    (24, "person", True, (220, 20, 60)),
    (25, "rider", True, (255, 0, 0)),
    (26, "car", True, (0, 0, 142)),
    (27, "truck", True, (0, 0, 70)),
    (28, "bus", True, (0, 60, 100)),
    (31, "train", True, (0, 80, 100)),
    (32, "motorcycle", True, (0, 0, 230)),
    (33, "bicycle", True, (119, 11, 32)),
)

# The 151 ADE20K panoptic training ids in order (row i is training id i):
# evaluation id (0-based ADE150 class, 255 for the void class 0), name,
# is_thing, colour.
_ADE20K_CATEGORIES: Tuple[_Row, ...] = (
    (255, "other-objects", False, (0, 0, 0)),
    (0, "wall", False, (120, 120, 120)),
    (1, "building", False, (180, 120, 120)),
    (2, "sky", False, (6, 230, 230)),
    (3, "floor", False, (80, 50, 50)),
    (4, "tree", False, (4, 200, 3)),
    (5, "ceiling", False, (120, 120, 80)),
    (6, "road", False, (140, 140, 140)),
    (7, "bed", True, (204, 5, 255)),
    (8, "windowpane", True, (230, 230, 230)),
    (9, "grass", False, (4, 250, 7)),
    (10, "cabinet", True, (224, 5, 255)),
    (11, "sidewalk", False, (235, 255, 7)),
    (12, "person", True, (150, 5, 61)),
    (13, "earth", False, (120, 120, 70)),
    (14, "door", True, (8, 255, 51)),
    (15, "table", True, (255, 6, 82)),
    (16, "mountain", False, (143, 255, 140)),
    (17, "plant", False, (204, 255, 4)),
    (18, "curtain", True, (255, 51, 7)),
    (19, "chair", True, (204, 70, 3)),
    (20, "car", True, (0, 102, 200)),
    (21, "water", False, (61, 230, 250)),
    (22, "painting", True, (255, 6, 51)),
    (23, "sofa", True, (11, 102, 255)),
    (24, "shelf", True, (255, 7, 71)),
    (25, "house", False, (255, 9, 224)),
    (26, "sea", False, (9, 7, 230)),
    (27, "mirror", True, (220, 220, 220)),
    (28, "rug", False, (255, 9, 92)),
    (29, "field", False, (112, 9, 255)),
    (30, "armchair", True, (8, 255, 214)),
    (31, "seat", True, (7, 255, 224)),
    (32, "fence", True, (255, 184, 6)),
    (33, "desk", True, (10, 255, 71)),
    (34, "rock", False, (255, 41, 10)),
    (35, "wardrobe", True, (7, 255, 255)),
    (36, "lamp", True, (224, 255, 8)),
    (37, "bathtub", True, (102, 8, 255)),
    (38, "railing", True, (255, 61, 6)),
    (39, "cushion", True, (255, 194, 7)),
    (40, "base", False, (255, 122, 8)),
    (41, "box", True, (0, 255, 20)),
    (42, "column", True, (255, 8, 41)),
    (43, "signboard", True, (255, 5, 153)),
    (44, "chest-of-drawers", True, (6, 51, 255)),
    (45, "counter", True, (235, 12, 255)),
    (46, "sand", False, (160, 150, 20)),
    (47, "sink", True, (0, 163, 255)),
    (48, "skyscraper", False, (140, 140, 140)),
    (49, "fireplace", True, (250, 10, 15)),
    (50, "refrigerator", True, (20, 255, 0)),
    (51, "grandstand", False, (31, 255, 0)),
    (52, "path", False, (255, 31, 0)),
    (53, "stairs", True, (255, 224, 0)),
    (54, "runway", False, (153, 255, 0)),
    (55, "case", True, (0, 0, 255)),
    (56, "pool-table", True, (255, 71, 0)),
    (57, "pillow", True, (0, 235, 255)),
    (58, "screen-door", True, (0, 173, 255)),
    (59, "stairway", False, (31, 0, 255)),
    (60, "river", False, (11, 200, 200)),
    (61, "bridge", False, (255, 82, 0)),
    (62, "bookcase", True, (0, 255, 245)),
    (63, "blind", False, (0, 61, 255)),
    (64, "coffee-table", True, (0, 255, 112)),
    (65, "toilet", True, (0, 255, 133)),
    (66, "flower", True, (255, 0, 0)),
    (67, "book", True, (255, 163, 0)),
    (68, "hill", False, (255, 102, 0)),
    (69, "bench", True, (194, 255, 0)),
    (70, "countertop", True, (0, 143, 255)),
    (71, "stove", True, (51, 255, 0)),
    (72, "palm", True, (0, 82, 255)),
    (73, "kitchen-island", True, (0, 255, 41)),
    (74, "computer", True, (0, 255, 173)),
    (75, "swivel-chair", True, (10, 0, 255)),
    (76, "boat", True, (173, 255, 0)),
    (77, "bar", False, (0, 255, 153)),
    (78, "arcade-machine", True, (255, 92, 0)),
    (79, "hovel", False, (255, 0, 255)),
    (80, "bus", True, (255, 0, 245)),
    (81, "towel", True, (255, 0, 102)),
    (82, "light", True, (255, 173, 0)),
    (83, "truck", True, (255, 0, 20)),
    (84, "tower", False, (255, 184, 184)),
    (85, "chandelier", True, (0, 31, 255)),
    (86, "awning", True, (0, 255, 61)),
    (87, "streetlight", True, (0, 71, 255)),
    (88, "booth", True, (255, 0, 204)),
    (89, "television", True, (0, 255, 194)),
    (90, "airplane", True, (0, 255, 82)),
    (91, "dirt-track", False, (0, 10, 255)),
    (92, "apparel", True, (0, 112, 255)),
    (93, "pole", True, (51, 0, 255)),
    (94, "land", False, (0, 194, 255)),
    (95, "bannister", True, (0, 122, 255)),
    (96, "escalator", False, (0, 255, 163)),
    (97, "ottoman", True, (255, 153, 0)),
    (98, "bottle", True, (0, 255, 10)),
    (99, "buffet", False, (255, 112, 0)),
    (100, "poster", False, (143, 255, 0)),
    (101, "stage", False, (82, 0, 255)),
    (102, "van", True, (163, 255, 0)),
    (103, "ship", True, (255, 235, 0)),
    (104, "fountain", True, (8, 184, 170)),
    (105, "conveyer-belt", False, (133, 0, 255)),
    (106, "canopy", False, (0, 255, 92)),
    (107, "washer", True, (184, 0, 255)),
    (108, "plaything", True, (255, 0, 31)),
    (109, "swimming-pool", False, (0, 184, 255)),
    (110, "stool", True, (0, 214, 255)),
    (111, "barrel", True, (255, 0, 112)),
    (112, "basket", True, (92, 255, 0)),
    (113, "waterfall", False, (0, 224, 255)),
    (114, "tent", False, (112, 224, 255)),
    (115, "bag", True, (70, 184, 160)),
    (116, "minibike", True, (163, 0, 255)),
    (117, "cradle", False, (153, 0, 255)),
    (118, "oven", True, (71, 255, 0)),
    (119, "ball", True, (255, 0, 163)),
    (120, "food", True, (255, 204, 0)),
    (121, "step", True, (255, 0, 143)),
    (122, "tank", False, (0, 255, 235)),
    (123, "trade-name", True, (133, 255, 0)),
    (124, "microwave", True, (255, 0, 235)),
    (125, "pot", True, (245, 0, 255)),
    (126, "animal", True, (255, 0, 122)),
    (127, "bicycle", True, (255, 245, 0)),
    (128, "lake", False, (10, 190, 212)),
    (129, "dishwasher", True, (214, 255, 0)),
    (130, "screen", True, (0, 204, 255)),
    (131, "blanket", False, (20, 0, 255)),
    (132, "sculpture", True, (255, 255, 0)),
    (133, "hood", True, (0, 153, 255)),
    (134, "sconce", True, (0, 41, 255)),
    (135, "vase", True, (0, 255, 204)),
    (136, "traffic-light", True, (41, 0, 255)),
    (137, "tray", True, (41, 255, 0)),
    (138, "ashcan", True, (173, 0, 255)),
    (139, "fan", True, (0, 245, 255)),
    (140, "pier", False, (71, 0, 255)),
    (141, "crt-screen", False, (122, 0, 255)),
    (142, "plate", True, (0, 255, 184)),
    (143, "monitor", True, (0, 92, 255)),
    (144, "bulletin-board", True, (184, 255, 0)),
    (145, "shower", False, (0, 133, 255)),
    (146, "radiator", True, (255, 214, 0)),
    (147, "glass", True, (25, 194, 194)),
    (148, "clock", True, (102, 255, 0)),
    (149, "flag", True, (92, 0, 255)),
)


def _descriptor(name: str, rows: Sequence[_Row], **kwargs) -> DatasetDescriptor:
  """Builds a descriptor whose training id i is rows[i]."""
  return DatasetDescriptor(
      name=name,
      num_classes=len(rows),
      class_has_instances_list=tuple(
          i for i, row in enumerate(rows) if row[2]),
      class_names=tuple(row[1] for row in rows),
      class_colors=tuple(row[3] for row in rows),
      train_id_to_eval_id=tuple(row[0] for row in rows),
      **kwargs)


_REGISTRY: Dict[str, DatasetDescriptor] = {}


def register_dataset(descriptor: DatasetDescriptor,
                     overwrite: bool = False) -> None:
  """Makes `descriptor` available to get_dataset_descriptor(descriptor.name)."""
  if descriptor.name in _REGISTRY and not overwrite:
    raise ValueError(f"dataset {descriptor.name!r} is already registered")
  _REGISTRY[descriptor.name] = descriptor


def dataset_names() -> Tuple[str, ...]:
  return tuple(sorted(_REGISTRY))


def get_dataset_descriptor(name: str) -> DatasetDescriptor:
  """Returns the descriptor registered as `name`; ValueError if unknown."""
  try:
    return _REGISTRY[name]
  except KeyError:
    close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1) or [
        known for known in dataset_names() if str(name) in known]
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"Unknown dataset {name!r}; known datasets: "
        f"{', '.join(dataset_names())}.{hint} Register other datasets with "
        "kmax_tf.data.datasets.register_dataset(DatasetDescriptor(...)).") \
        from None


register_dataset(_descriptor(
    COCO_PANOPTIC, ((0, "void", False, (0, 0, 0)),) + _COCO_CATEGORIES,
    ignore_label=0, panoptic_label_divisor=256,
    splits_to_sizes={"train": 118287, "val": 5000, "test": 40670}))
register_dataset(_descriptor(
    CITYSCAPES_PANOPTIC, _CITYSCAPES_CATEGORIES,
    ignore_label=255, panoptic_label_divisor=1000,
    splits_to_sizes={"train_fine": 2975, "val_fine": 500,
                     "trainval_fine": 3475, "test_fine": 1525}))
register_dataset(_descriptor(
    ADE20K_PANOPTIC, _ADE20K_CATEGORIES,
    ignore_label=0, panoptic_label_divisor=1000,
    splits_to_sizes={"train": 20210, "val": 2000}))
