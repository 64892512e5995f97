"""DeepLab2's kMaX-DeepLab built in the benchmark's own process, beside kmax_tf.

Used by `benchmarks/inference.py` and `benchmarks/train_step.py` with
`--deeplab2_dir=PATH`: a checkout of google-research/deeplab2 (commit 64bc1c1)
whose .proto files are compiled (BENCHMARKS.md, "Setting up DeepLab2
for side-by-side runs"). Nothing of DeepLab2 is part of kmax_tf; this module
only imports it from the user's checkout.

Both models are built from DeepLab2's own textproto (kmax_tf reads it
unchanged). DeepLab2's model gets the weights of the DeepLab2 parity fixtures
where they exist for that config (`../shared/fixtures/deeplab2_parity`, healthy
activations and non-trivial panoptic maps) and keeps its random initialisation
otherwise; its model-only checkpoint is then written with DeepLab2's own
checkpoint items and loaded into kmax_tf with `load_deeplab2_checkpoint`, so
both compute with the same numbers.
"""
import json
import os
import subprocess
import sys

DEEPLAB2_COMMIT = "64bc1c1"
# Benchmark case name -> DeepLab2 textproto (relative to the checkout) and the
# parity-fixture model whose weights it can take.
DEEPLAB2_CONFIGS = {
    "r50": ("configs/coco/kmax_deeplab/kmax_meta_r50_os32.textproto", "coco_r50"),
    "convnext_tiny": ("configs/coco/kmax_deeplab/kmax_meta_convnext_tiny_os32.textproto",
                      "coco_convnext_tiny"),
    "axial_r50": ("configs/coco/kmax_deeplab/kmax_meta_axial_r50_os32.textproto",
                  "coco_axial_r50"),
}
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTO = os.path.join(os.path.dirname(_ROOT), "shared", "fixtures", "coco_val2017_16", "val2017",
                     "000000397133.jpg")
SETUP_HELP = ("git clone https://github.com/google-research/deeplab2 && "
              f"git -C deeplab2 checkout {DEEPLAB2_COMMIT} && "
              "python -m grpc_tools.protoc -I. --python_out=. deeplab2/*.proto  "
              "(run in the folder that holds deeplab2/)")


def prepare(deeplab2_dir):
  """Makes `import deeplab2` work; call before anything imports TensorFlow.

  DeepLab2 uses `tf.keras`, which must be tf_keras for it (TF_USE_LEGACY_KERAS=1);
  kmax_tf imports tf_keras by name and is unaffected. Returns the checkout's commit.
  """
  deeplab2_dir = os.path.abspath(deeplab2_dir)
  if "tensorflow" in sys.modules:
    raise RuntimeError("deeplab2_beside.prepare() must run before TensorFlow is imported.")
  if os.path.basename(deeplab2_dir) != "deeplab2" or not os.path.isfile(
      os.path.join(deeplab2_dir, "model", "kmax_deeplab.py")):
    raise FileNotFoundError(f"--deeplab2_dir={deeplab2_dir} is not a DeepLab2 checkout named "
                            f"'deeplab2'. Set-up: {SETUP_HELP}")
  if not os.path.isfile(os.path.join(deeplab2_dir, "config_pb2.py")):
    raise FileNotFoundError(f"{deeplab2_dir}/config_pb2.py is missing: DeepLab2's protos are not "
                            f"compiled. Set-up: {SETUP_HELP}")
  os.environ["TF_USE_LEGACY_KERAS"] = "1"
  sys.path.insert(0, os.path.dirname(deeplab2_dir))
  try:
    commit = subprocess.run(["git", "-C", deeplab2_dir, "rev-parse", "--short=7", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    commit = "unknown"
  if commit != DEEPLAB2_COMMIT:
    print(f"warning: DeepLab2 checkout at {commit}, the benchmarks were written for "
          f"{DEEPLAB2_COMMIT}", file=sys.stderr)
  return commit


def textproto_path(deeplab2_dir, case_name):
  return os.path.join(os.path.abspath(deeplab2_dir), DEEPLAB2_CONFIGS[case_name][0])


def crop_overrides(crop):
  """Field overrides (kmax_tf dotted syntax) for a square crop without initial checkpoints."""
  out = []
  for split in ("train_dataset_options", "eval_dataset_options"):
    out += [f"{split}.crop_size={crop},{crop}", f"{split}.min_resize_value={crop}",
            f"{split}.max_resize_value={crop}"]
  return out + ["model_options.initial_checkpoint=", "model_options.backbone.pretrained_weights="]


def load_deeplab2_config(path, crop, drop_path_keep_prob=None):
  """DeepLab2's ExperimentOptions from `path`, with the crop and no initial checkpoints."""
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  from deeplab2 import config_pb2  # pylint: disable=g-import-not-at-top
  with open(path, encoding="utf-8") as f:
    config = text_format.Parse(f.read(), config_pb2.ExperimentOptions())
  for split in (config.train_dataset_options, config.eval_dataset_options):
    split.crop_size[:] = [crop, crop]
    split.min_resize_value[:] = [crop]
    split.max_resize_value[:] = [crop]
  config.model_options.initial_checkpoint = ""
  config.model_options.backbone.pretrained_weights = ""
  if drop_path_keep_prob is not None:
    config.model_options.backbone.drop_path_keep_prob = drop_path_keep_prob
  return config


def build_deeplab2_model(config, crop):
  """DeepLab2's model as its train_lib builds it, variables created at `crop`."""
  from deeplab2.data import dataset  # pylint: disable=g-import-not-at-top
  from deeplab2.trainer import train_lib  # pylint: disable=g-import-not-at-top
  info = dataset.MAP_NAME_TO_DATASET_INFO[config.train_dataset_options.dataset]
  model = train_lib.create_deeplab_model(config, info)
  train_lib.build_deeplab_model(model, (crop, crop))
  return model


def share_weights(deeplab2_model, kmax_model, fixture_model, workdir):
  """Gives DeepLab2's model the fixture weights (when available) and kmax_tf the same.

  Returns "parity-fixture weights" or "DeepLab2 random initialisation".
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import kmax_tf  # pylint: disable=g-import-not-at-top
  from kmax_tf.testing import deeplab2_checkpoint_writer  # pylint: disable=g-import-not-at-top
  checkpoint = tf.train.Checkpoint(**deeplab2_model.checkpoint_items)
  source = "DeepLab2 random initialisation"
  try:
    fixture_prefix = deeplab2_checkpoint_writer.write_checkpoint(
        fixture_model, os.path.join(workdir, f"{fixture_model}_fixture", "ckpt"))
  except FileNotFoundError:
    fixture_prefix = None
  if fixture_prefix is not None:
    checkpoint.read(fixture_prefix).assert_existing_objects_matched().expect_partial()
    source = "parity-fixture weights"
  prefix = checkpoint.write(os.path.join(workdir, f"{fixture_model}_deeplab2_model_only", "ckpt"))
  kmax_tf.load_deeplab2_checkpoint(kmax_model, prefix)
  return source


def photo(size):
  """A real COCO photo as float32 [1, size, size, 3] in 0..255 (uniform noise if absent)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  if os.path.isfile(PHOTO):
    from PIL import Image  # pylint: disable=g-import-not-at-top
    with Image.open(PHOTO) as image:
      pixels = np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR))
    return pixels[np.newaxis].astype(np.float32), os.path.basename(PHOTO)
  return (np.random.RandomState(0).uniform(0, 255, [1, size, size, 3]).astype(np.float32),
          "uniform noise")


def write_json(path, result):
  """Writes `result` to `path` as JSON through a temporary file (no half-written file)."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2)
  os.replace(tmp, path)


def machine_record():
  """CPU model, vector extensions, oneDNN state and kmax_tf's kernel choices."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from kmax_tf import kernel_choices  # pylint: disable=g-import-not-at-top
  record = kernel_choices.kernel_choices().as_dict()
  record.update(tf_version=tf.__version__, cpu_count=os.cpu_count(),
                TF_ENABLE_ONEDNN_OPTS=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(unset)"))
  return record
