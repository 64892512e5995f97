r"""Panoptic segmentation of images with a kMaX-DeepLab model.

  kmax-predict --config_file=configs/coco/kmax_r50.textproto \
      --checkpoint=PATH --input=IMAGE_OR_DIR --output_dir=OUT [--precision=bfloat16]

For each image it writes, next to each other in OUT:
  <name>_overlay.png   the photo blended with one colour per segment;
  <name>_panoptic.png  COCO panoptic PNG (segment id = R + 256 G + 256^2 B, 0 = void);
  <name>.json          COCO panoptic annotation of that PNG (segments with dataset
                       category ids, area, bbox, score) and the categories.
The checkpoint may be ours or DeepLab2's (kMaX-DeepLab;
model-only or trainer layout). Images are processed like DeepLab2's evaluation:
long side resized to the eval crop (bilinear, align_corners), padded with 127.5,
and the maps are brought back to the original size.
"""
import os
import sys

from absl import flags
import numpy as np
from PIL import Image
import tensorflow as tf
import tqdm

from kmax_tf import cli
from kmax_tf.panoptic_predictor import PanopticPredictor
from kmax_tf.post_processing import segment_scores

PRECISIONS = ("float32", "bfloat16")

_FLAGS = flags.FlagValues()
cli.define_config_flags(_FLAGS)
flags.DEFINE_string("checkpoint", None, "kmax_tf or DeepLab2 checkpoint (prefix or directory).",
                    required=True, flag_values=_FLAGS)
flags.DEFINE_string("input", None, "An image file or a directory of images.", required=True,
                    flag_values=_FLAGS)
flags.DEFINE_string("output_dir", None, "Where to write the results.", required=True,
                    flag_values=_FLAGS)
flags.DEFINE_float("overlay_alpha", 0.55, "Opacity of the segment colours.", flag_values=_FLAGS)
flags.DEFINE_enum(
    "precision", "float32", PRECISIONS,
    "Network compute type. float32 computes DeepLab2's numbers; bfloat16 (mixed: float32 "
    "weights and post-processing) is faster on CPUs with AVX512_BF16 or AMX and on TPUs "
    "(it can be slower on CPUs without them), and its maps differ from float32 on a "
    "small fraction of pixels (BENCHMARKS.md).", flag_values=_FLAGS)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


class PredictError(ValueError):
  """An input the predictor cannot use (named in the message)."""


def list_images(path):
  """The image files to predict: `path` itself, or the images of directory `path` (sorted).

  Args:
    path: an image file or a directory (not searched recursively).
  """
  if os.path.isdir(path):
    files = sorted(os.path.join(path, f) for f in os.listdir(path)
                   if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
      raise PredictError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) in directory {path}.")
    return files
  if not os.path.exists(path):
    raise PredictError(f"Input {path} does not exist.")
  return [path]


def read_image(path):
  """Decodes with TF, as DeepLab2's input pipeline does (PIL decodes JPEGs differently).

  Args:
    path: JPEG/PNG/GIF/BMP/WebP file.

  Returns:
    uint8 [H, W, 3] RGB tensor.
  """
  try:
    data = tf.io.read_file(path)
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
  except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as e:
    raise PredictError(f"Cannot read image {path}: not a decodable JPEG/PNG/GIF/BMP/WebP "
                       f"file ({e.message.splitlines()[0] if e.message else type(e).__name__}).")
  return image


def build_inference_model(config, checkpoint: str, precision: str = "float32"):
  """Builds the model of `config` for inference and loads `checkpoint` into it.

  Returns (model, description of what was loaded). With precision "bfloat16"
  the layers are built under the mixed_bfloat16 policy (float32 variables,
  bfloat16 computation); the post-processor keeps float32 whatever the policy.
  The global Keras policy is restored afterwards, so later models are
  unaffected.

  Args:
    config: ExperimentOptions.
    checkpoint: checkpoint prefix or directory (kmax_tf or DeepLab2 layout).
    precision: "float32" or "bfloat16" (see model_builder.set_precision).
  """
  import tf_keras  # pylint: disable=g-import-not-at-top
  import kmax_tf  # pylint: disable=g-import-not-at-top
  from kmax_tf import model_builder  # pylint: disable=g-import-not-at-top
  from kmax_tf.checkpoints import checkpoint_io  # pylint: disable=g-import-not-at-top
  previous = model_builder.set_precision(precision, allowed=PRECISIONS)
  try:
    model = kmax_tf.build_model(config)
  finally:
    tf_keras.mixed_precision.set_global_policy(previous)
  return model, checkpoint_io.load_checkpoint(model, checkpoint)


def overlay(image, panoptic, descriptor, alpha):
  """Blends one colour per segment (class colour, shifted per thing instance).

  Args:
    image: float32 [H, W, 3] RGB in 0..255.
    panoptic: int [H, W] panoptic ids (class * label_divisor + instance) at the
      image's size.
    descriptor: DatasetDescriptor (colours, label divisor, void class).
    alpha: weight (0..1) of the segment colour; void pixels keep the image.

  Returns:
    uint8 [H, W, 3] RGB, segment borders white.
  """
  colours = np.zeros(panoptic.shape + (3,), np.float32)
  classes = panoptic // descriptor.panoptic_label_divisor
  instances = panoptic % descriptor.panoptic_label_divisor
  palette = descriptor.colormap().astype(np.float32)
  colours[:] = palette[np.clip(classes, 0, len(palette) - 1)]
  shift = ((instances[..., None] * np.array([37, 71, 113])) % 61 - 30).astype(np.float32)
  colours = np.clip(colours + np.where(instances[..., None] > 0, shift, 0), 0, 255)
  void = classes == descriptor.ignore_label
  blended = np.where(void[..., None], image, (1 - alpha) * image + alpha * colours)
  # Segment boundaries in white make adjacent instances of one class visible.
  edge = np.zeros_like(void)
  edge[:-1] |= panoptic[:-1] != panoptic[1:]
  edge[:, :-1] |= panoptic[:, :-1] != panoptic[:, 1:]
  blended[edge] = 255
  return blended.astype(np.uint8)


def _write_png(path, array):
  tmp = path + ".tmp.png"
  Image.fromarray(array).save(tmp)
  os.replace(tmp, path)


def predict_files(predictor, files, output_dir, descriptor, alpha=0.55, progress=True):
  """Runs the predictor on `files`, writing the three outputs per image.

  Args:
    predictor: a PanopticPredictor.
    files: image paths.
    output_dir: folder for <stem>.json, <stem>_panoptic.png and
      <stem>_overlay.png.
    descriptor: DatasetDescriptor of the model's classes.
    alpha: overlay colour weight (0..1).
    progress: show a progress bar for several files.

  Returns:
    A list of (file stem, number of segments).
  """
  from kmax_tf.evaluation import coco_panoptic_writer  # pylint: disable=g-import-not-at-top
  os.makedirs(output_dir, exist_ok=True)
  written = []
  bar = tqdm.tqdm(files, unit="image", disable=not progress or len(files) < 2)
  for path in bar:
    image = read_image(path)
    panoptic, scores = predictor(image)
    stem = os.path.splitext(os.path.basename(path))[0]
    json_path = os.path.join(output_dir, f"{stem}.json")
    writer = coco_panoptic_writer.for_descriptor(descriptor, json_path, output_folder=output_dir)
    annotation = writer.add(stem, panoptic, file_name=f"{stem}_panoptic.png")
    by_id = segment_scores.segment_scores(np.asarray(panoptic), np.asarray(scores))
    ids = [i for i in sorted(by_id)
           if i // descriptor.panoptic_label_divisor != descriptor.ignore_label]
    for segment, label in zip(annotation["segments_info"], ids):
      segment["score"] = by_id[label]
      segment["category_name"] = descriptor.class_names[label // descriptor.panoptic_label_divisor]
    writer.close()
    _write_png(os.path.join(output_dir, f"{stem}_overlay.png"),
               overlay(image.numpy().astype(np.float32), panoptic, descriptor, alpha))
    written.append((stem, len(annotation["segments_info"])))
  return written


def _predict_command(f: flags.FlagValues) -> int:
  import kmax_tf  # pylint: disable=g-import-not-at-top
  files = list_images(f.input)
  config = kmax_tf.load_config(f.config_file, f.config_override)
  model, loaded = build_inference_model(config, f.checkpoint, f.precision)
  print(f"Loaded {loaded} ({f.precision})")
  predictor = PanopticPredictor.for_config(model, config)
  for stem, count in predict_files(predictor, files, f.output_dir, model.dataset_descriptor,
                                   f.overlay_alpha):
    print(f"{stem}: {count} segments -> {os.path.join(f.output_dir, stem)}"
          "{_overlay.png,_panoptic.png,.json}")
  return 0


main = cli.command(_FLAGS, _predict_command, __doc__,
                   input_errors=(ValueError, FileNotFoundError))


if __name__ == "__main__":
  sys.exit(main())
