"""A synthetic panoptic dataset in COCO panoptic format, for the bundled demo.

Format:
Kirillov et al., "Panoptic Segmentation", CVPR 2019 (COCO panoptic: one RGB
PNG per image whose colour encodes the segment id R + 256 G + 256^2 B, and a
JSON listing images, segments and categories).

A fresh machine has no COCO, so the demo trains on scenes this module draws.
Each scene is split by a random straight border into two "stuff" regions, each
filled with the texture of its class (stripes, checkerboard, blotches), and
holds a few "thing" instances: filled circles, squares and triangles in random
solid colours and sizes, later shapes occluding earlier ones. Class identity
therefore lies in texture and shape, not in colour, so the model has to learn
what panoptic segmentation needs: stuff by texture, things by shape, and one
mask per instance.

Everything is a function of (seed, split, index): two calls give identical
files, and the held-out split never shares a scene with the training split.
"""
import json
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image

DATASET_NAME = "kmax_demo_shapes"

# COCO panoptic categories: id, name, isthing, colour (for visualization).
CATEGORIES: Tuple[Dict, ...] = (
    {"id": 1, "name": "circle", "isthing": 1, "color": [220, 20, 60], "supercategory": "shape"},
    {"id": 2, "name": "square", "isthing": 1, "color": [0, 0, 142], "supercategory": "shape"},
    {"id": 3, "name": "triangle", "isthing": 1, "color": [250, 170, 30], "supercategory": "shape"},
    {"id": 4, "name": "stripes", "isthing": 0, "color": [107, 142, 35], "supercategory": "texture"},
    {"id": 5, "name": "checkerboard", "isthing": 0, "color": [70, 130, 180], "supercategory": "texture"},
    {"id": 6, "name": "blotches", "isthing": 0, "color": [152, 251, 152], "supercategory": "texture"},
)
THING_CATEGORY_IDS = (1, 2, 3)
STUFF_CATEGORY_IDS = (4, 5, 6)

# Things must stay recognisable after occlusion and at the model's output
# stride (4): at least this fraction of the image (120 pixels of a 128x128
# scene) and this fraction of the whole shape stay visible.
MIN_VISIBLE_AREA = 120 / 128**2
MIN_VISIBLE_FRACTION = 0.6
# Thing size: radius (circle; about the half side of a square and the
# inradius-based size of a triangle) as a fraction of the image size.
MIN_RADIUS = 0.12
MAX_RADIUS = 0.22
# Squares and triangles stand nearly upright (+-MAX_TILT radians), so the
# classes differ by shape, not by pose; that keeps the demo short.
MAX_TILT = 0.2


def _split_seed(seed: int, split: str, index: int) -> np.random.Generator:
  split_code = sum(ord(c) * 131 ** i for i, c in enumerate(split)) % (2**31)
  return np.random.default_rng([seed, split_code, index])


def _texture(rng: np.random.Generator, category_id: int, size: int) -> np.ndarray:
  """[size, size, 3] float image of a stuff texture; colours vary per image."""
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
  low = rng.uniform(20, 110, 3)
  high = rng.uniform(140, 240, 3)
  if category_id == 4:  # stripes: a sinusoid at a random angle and period.
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(6, 10)
    phase = rng.uniform(0, 2 * np.pi)
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period
                              + phase)
  elif category_id == 5:  # checkerboard with random cell size and offset.
    cell = rng.integers(5, 9)
    ox, oy = rng.integers(0, cell, 2)
    wave = (((xx + ox) // cell + (yy + oy) // cell) % 2).astype(np.float32)
  else:  # blotches: smooth random noise, thresholded softly.
    coarse = rng.uniform(0, 1, (size // 8 + 2, size // 8 + 2)).astype(np.float32)
    smooth = np.asarray(Image.fromarray(coarse).resize((size + 16, size + 16), Image.BICUBIC))
    smooth = smooth[8:8 + size, 8:8 + size]
    wave = np.clip((smooth - 0.5) * 4 + 0.5, 0, 1)
  return low + (high - low) * wave[..., None]


def _stuff_layout(rng: np.random.Generator, size: int) -> np.ndarray:
  """Boolean [size, size] mask of the first stuff region (a random half-plane)."""
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
  angle = rng.uniform(0, 2 * np.pi)
  # The border passes through the central area, so both regions stay large.
  cx, cy = rng.uniform(0.3 * size, 0.7 * size, 2)
  side = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
  return side < 0


def _shape_mask(rng: np.random.Generator, category_id: int, size: int) -> np.ndarray:
  """Boolean [size, size] mask of one thing at a random place, size and pose."""
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
  radius = rng.uniform(MIN_RADIUS, MAX_RADIUS) * size
  cx, cy = rng.uniform(radius * 0.6, size - radius * 0.6, 2)
  if category_id == 1:
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2
  angle = rng.uniform(-MAX_TILT, MAX_TILT)
  if category_id == 2:
    u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    v = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
    half = radius * 0.85
    return (np.abs(u) <= half) & (np.abs(v) <= half)
  # Equilateral triangle pointing up: inside the three half-planes of its
  # edges, whose outward normals point down and to the upper left and right.
  inside = np.ones((size, size), bool)
  for k in range(3):
    normal = np.pi / 2 + angle + 2 * np.pi * k / 3
    # Inradius 0.8 * radius: about the area of the circle of that radius.
    inside &= ((xx - cx) * np.cos(normal) + (yy - cy) * np.sin(normal)) <= radius * 0.8
  return inside


def _thing_color(rng: np.random.Generator) -> np.ndarray:
  """A saturated colour, so things stand out of any texture."""
  color = rng.uniform(0, 80, 3)
  color[rng.integers(0, 3)] = rng.uniform(180, 255)
  if rng.uniform() < 0.5:
    color[rng.integers(0, 3)] = rng.uniform(150, 255)
  return color


def draw_scene(seed: int, split: str, index: int, size: int = 128,
               max_things: int = 4) -> Tuple[np.ndarray, np.ndarray, List[Dict]]:
  """One scene: (uint8 RGB [size, size, 3], int32 segment-id map, segments).

  Segments are COCO panoptic `segments_info` entries (id, category_id,
  iscrowd, area, bbox); segment ids start at 1.

  Args:
    seed: dataset seed; the scene depends only on (seed, split, index).
    split: split name.
    index: image index within the split.
    size: image height and width in pixels.
    max_things: most thing instances in the scene.
  """
  rng = _split_seed(seed, split, index)
  first, second = rng.choice(STUFF_CATEGORY_IDS, size=2, replace=False)
  region = _stuff_layout(rng, size)
  background = np.where(region[..., None], _texture(rng, int(first), size),
                        _texture(rng, int(second), size))
  image = background.copy()
  stuff_map = np.where(region, 1, 2).astype(np.int32)
  segment_map = stuff_map.copy()
  categories = {1: int(first), 2: int(second)}
  full_areas = {}
  next_id = 3
  min_pixels = MIN_VISIBLE_AREA * size * size
  for _ in range(int(rng.integers(1, max_things + 1))):
    category_id = int(rng.choice(THING_CATEGORY_IDS))
    mask = _shape_mask(rng, category_id, size)
    if mask.sum() < min_pixels:
      continue
    image[mask] = _thing_color(rng)
    segment_map[mask] = next_id
    categories[next_id] = category_id
    full_areas[next_id] = int(mask.sum())
    next_id += 1
  # Things occluded too much would be ambiguous targets: give their pixels
  # back to the stuff underneath, as if they had not been drawn.
  for segment_id, full_area in full_areas.items():
    visible = segment_map == segment_id
    if visible.sum() < max(min_pixels, MIN_VISIBLE_FRACTION * full_area):
      segment_map[visible] = stuff_map[visible]
      image[visible] = background[visible]
      del categories[segment_id]
  image += rng.normal(0, 6, image.shape)
  image = np.clip(np.rint(image), 0, 255).astype(np.uint8)

  segments = []
  for segment_id, category_id in sorted(categories.items()):
    ys, xs = np.nonzero(segment_map == segment_id)
    if ys.size == 0:
      continue
    segments.append({
        "id": int(segment_id), "category_id": category_id, "iscrowd": 0,
        "area": int(ys.size),
        "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                 int(ys.max() - ys.min() + 1)]})
  return image, segment_map, segments


def _id_to_rgb(ids: np.ndarray) -> np.ndarray:
  return np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)


def write_split(root: str, split: str, num_images: int, seed: int = 0, size: int = 128) -> str:
  """Writes one split under `root` in the layout of the custom converter.

  Layout: {root}/{split}/*.png images, {root}/annotations/panoptic_{split}.json
  and {root}/annotations/panoptic_{split}/*.png. Returns the JSON path.
  Files are written under temporary names and renamed, and the JSON last, so
  an interrupted run never leaves a JSON pointing at missing files.

  Args:
    root: dataset root folder.
    split: split name.
    num_images: images to draw.
    seed: dataset seed.
    size: image height and width in pixels.
  """
  image_dir = os.path.join(root, split)
  annotation_dir = os.path.join(root, "annotations", f"panoptic_{split}")
  os.makedirs(image_dir, exist_ok=True)
  os.makedirs(annotation_dir, exist_ok=True)
  images, annotations = [], []
  for index in range(num_images):
    image, segment_map, segments = draw_scene(seed, split, index, size)
    stem = f"{split}_{index:06d}"
    _save_png(image, os.path.join(image_dir, stem + ".png"))
    _save_png(_id_to_rgb(segment_map), os.path.join(annotation_dir, stem + ".png"))
    images.append({"id": index, "file_name": stem + ".png", "height": size, "width": size})
    annotations.append({"image_id": index, "file_name": stem + ".png",
                        "segments_info": segments})
  json_path = os.path.join(root, "annotations", f"panoptic_{split}.json")
  data = {"info": {"description": "kmax_tf synthetic shapes (demo)"},
          "images": images, "annotations": annotations, "categories": list(CATEGORIES)}
  tmp = json_path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(data, f)
  os.replace(tmp, json_path)
  return json_path


def _save_png(array: np.ndarray, path: str) -> None:
  tmp = path + ".tmp"
  Image.fromarray(array).save(tmp, format="PNG")
  os.replace(tmp, path)


def write_dataset(root: str, splits: Sequence[Tuple[str, int]] = (("train", 600), ("val", 100)),
                  seed: int = 0, size: int = 128) -> Dict[str, str]:
  """Writes every (split, number of images); returns {split: JSON path}.

  Args:
    root: dataset root folder.
    splits: (split name, number of images) pairs.
    seed: dataset seed.
    size: image height and width in pixels.
  """
  return {split: write_split(root, split, count, seed, size) for split, count in splits}


def descriptor(label_divisor: int = 1000):
  """The label space the custom converter derives from CATEGORIES (void = 0)."""
  from kmax_tf.data import custom_panoptic_converter  # pylint: disable=g-import-not-at-top
  return custom_panoptic_converter.descriptor_from_categories(
      DATASET_NAME, CATEGORIES, label_divisor)


def panoptic_label(segment_map: np.ndarray, segments: Sequence[Dict],
                   label_divisor: int = 1000) -> np.ndarray:
  """int32 map of class * label_divisor + instance (training ids, as the converter writes).

  Training id of category i (file order) is i + 1; thing instances are
  numbered from 1 in segment order, stuff has instance 0.

  Args:
    segment_map: int [H, W] COCO segment ids (draw_scene's map, 0 = void).
    segments: the scene's segments_info entries.
    label_divisor: panoptic id = class * label_divisor + instance.
  """
  train_id = {c["id"]: i + 1 for i, c in enumerate(CATEGORIES)}
  label = np.zeros(segment_map.shape, np.int32)
  instances = {}
  for segment in segments:
    class_id = train_id[segment["category_id"]]
    instance = 0
    if segment["category_id"] in THING_CATEGORY_IDS:
      instances[class_id] = instances.get(class_id, 0) + 1
      instance = instances[class_id]
    label[segment_map == segment["id"]] = class_id * label_divisor + instance
  return label
