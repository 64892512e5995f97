"""What tf-models-official offers for four of our modules, and where it differs.

Each module's docstring says why we keep our own version (or, for the warm-up,
that we use the library's); these tests check those statements, so they fail
when the library or our code changes:
  - kmax_tf/data/autoaugment.py vs official.vision.ops.augment;
  - kmax_tf/losses/hungarian_matcher.py vs official.projects.detr.ops.matchers;
  - kmax_tf/training/optimizer_builder.py's warm-up (official.nlp.optimization.
    WarmUp) vs DeepLab2's formula and vs lr_schedule.LinearWarmup;
  - kmax_tf/training/adam_weight_decay.py vs legacy_adamw.AdamWeightDecay.
"""
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from scipy.optimize import linear_sum_assignment

from kmax_tf.config import loader
from kmax_tf.config.config_error import ConfigError
from kmax_tf.data import autoaugment
from kmax_tf.losses.hungarian_matcher import hungarian_matching
from kmax_tf.testing import deeplab2_fixtures
from kmax_tf.training import optimizer_builder
from kmax_tf.training.adam_weight_decay import AdamWeightDecay
from official.modeling.optimization import legacy_adamw
from official.modeling.optimization import lr_schedule
from official.projects.detr.ops import matchers

# ---------------------------------------------------------------- AutoAugment

_LEVELS = (0, 1, 3, 5, 7, 9, 10, 0.2, 1.4, 1.8, 2.0)


@pytest.fixture(scope="module")
def augment():
  # Imported here: it loads Keras 3, pandas, ... (see the import test below).
  from official.vision.ops import augment as library  # pylint: disable=g-import-not-at-top
  return library


@pytest.fixture(scope="module")
def coco_images():
  files = sorted(glob.glob(os.path.join(deeplab2_fixtures.fixtures_dir(), "coco_val2017_16",
                                        "val2017", "*.jpg")))
  assert len(files) == 16
  return [tf.io.decode_jpeg(tf.io.read_file(f), channels=3) for f in files]


def _differences(augment, images, name, levels):
  """(max |ours - library| in grey levels, mean fraction of differing pixels)."""
  level_to_arg = augment.level_to_arg(cutout_const=100, translate_const=250)
  worst, fractions = 0, []
  for level in levels:
    ours = autoaugment._operation(name, level)  # pylint: disable=protected-access
    for image in images:
      library = augment.NAME_TO_FUNC[name](image, *level_to_arg[name](level))
      difference = np.abs(ours(image).numpy().astype(int) - library.numpy().astype(int))
      worst = max(worst, int(difference.max()))
      fractions.append(float(np.mean(difference.max(-1) > 0)))
  return worst, float(np.mean(fractions))


@pytest.mark.parametrize("name", ["AutoContrast", "Equalize", "Invert", "Posterize", "Solarize",
                                  "Color", "Brightness", "Sharpness"])
def test_autoaugment_operation_equals_the_library(augment, coco_images, name):
  levels = _LEVELS if name in ("Posterize", "Solarize") else (0, 1.4, 7, 10)
  if name in ("AutoContrast", "Equalize", "Invert"):
    levels = (5,)  # no argument
  assert _differences(augment, coco_images, name, levels) == (0, 0.0)


def test_autoaugment_contrast_differs_from_the_library(augment, coco_images):
  # DeepLab2 blends toward min(pixel count / 256, 255), the library toward each
  # channel's mean (tf.image.adjust_contrast).
  worst, fraction = _differences(augment, coco_images, "Contrast", _LEVELS)
  assert worst == 187
  assert fraction == pytest.approx(0.875, abs=0.005)


def test_autoaugment_levels_and_policy_equal_the_library(augment):
  level_to_arg = augment.level_to_arg(cutout_const=100, translate_const=250)
  for level in np.round(np.arange(0, 10.01, 0.2), 1):
    assert level_to_arg["Posterize"](level) == (int(level / 10 * 4),)
    assert level_to_arg["Solarize"](level) == (int(level / 10 * 256),)
    for name in ("Color", "Contrast", "Brightness", "Sharpness"):
      assert level_to_arg[name](level) == (autoaugment._enhance_factor(level),)  # pylint: disable=protected-access
  ours = autoaugment.POLICIES["simple_classification_policy_magnitude_scale_0.2"]
  library = augment.AutoAugment.panoptic_deeplab_policy()
  assert [[(o, p, round(l, 6)) for o, p, l in sub] for sub in ours] == [
      [(o, p, round(float(l), 6)) for o, p, l in sub] for sub in library]


_IMPORT_AUGMENT = r"""
import json, sys
from kmax_tf.runtime.lean_import import import_tensorflow_lean
import_tensorflow_lean()
import tf_keras
from kmax_tf.training import experiment  # the trainer's imports
before = {m for m in ("keras", "pandas", "sklearn", "matplotlib", "cv2") if m in sys.modules}
import official.vision.ops.augment
after = {m for m in ("keras", "pandas", "sklearn", "matplotlib", "cv2") if m in sys.modules}
print(json.dumps([sorted(before), sorted(after)]))
"""


def test_importing_the_library_augment_loads_what_the_trainer_avoids():
  out = subprocess.run([sys.executable, "-c", _IMPORT_AUGMENT], capture_output=True, text=True,
                       timeout=300, check=True).stdout
  before, after = json.loads(out.strip().splitlines()[-1])
  assert before == []
  assert after == ["cv2", "keras", "matplotlib", "pandas", "sklearn"]

# ---------------------------------------------------------------- Hungarian


def _library_rows_to_cols(costs, jit_compile=False):
  _, assignment = tf.function(matchers.hungarian_matching, jit_compile=jit_compile)(
      tf.constant(costs))
  assignment = assignment.numpy()
  assert np.all(assignment.sum(1) == 1) and np.all(assignment.sum(2) == 1)
  return np.argmax(assignment, axis=2)


def _gap_to_optimum(costs, rows_to_cols):
  gaps = []
  for matrix, cols in zip(costs.astype(np.float64), rows_to_cols):
    rows, optimal_cols = linear_sum_assignment(matrix)
    gaps.append(matrix[np.arange(len(cols)), cols].sum() - matrix[rows, optimal_cols].sum())
  return gaps


@pytest.mark.parametrize("size,kind", [(10, "uniform"), (10, "ints_0_2"), (10, "row_times_col"),
                                       (128, "uniform"), (128, "ints_0_2"), (128, "tiny_negative")])
def test_library_matcher_is_optimal_on_square_costs(size, kind):
  rng = np.random.RandomState(size)
  make = {"uniform": lambda: rng.rand(size, size),
          "ints_0_2": lambda: rng.randint(0, 3, (size, size)),
          "tiny_negative": lambda: -rng.rand(size, size) ** 8,
          "row_times_col": lambda: np.outer(np.arange(size), np.arange(size))}[kind]
  costs = np.stack([make(), make()]).astype(np.float32)
  assert _gap_to_optimum(costs, _library_rows_to_cols(costs)) == [0.0, 0.0]
  assert _gap_to_optimum(costs, hungarian_matching(tf.constant(costs)).numpy()) == [0.0, 0.0]


def test_library_matcher_needs_square_costs_padded_like_kmax():
  with pytest.raises(tf.errors.InvalidArgumentError):
    matchers.hungarian_matching(tf.zeros([1, 5, 7]))
  # 40 ground-truth masks x 128 slots, padded to 128 rows of equal cost.
  costs = np.zeros([2, 128, 128], np.float32)
  costs[:, :40] = -np.random.RandomState(0).rand(2, 40, 128) ** 2
  library = _library_rows_to_cols(costs)
  ours = hungarian_matching(tf.constant(costs[:, :40])).numpy()
  assert _gap_to_optimum(costs, library) == [0.0, 0.0]
  np.testing.assert_array_equal(library[:, :40], ours)


def test_library_matcher_compiles_with_xla():
  costs = np.random.RandomState(1).rand(2, 16, 16).astype(np.float32)
  assert _gap_to_optimum(costs, _library_rows_to_cols(costs, jit_compile=True)) == [0.0, 0.0]


# ---------------------------------------------------------------- warm-up


def _solver(**fields):
  text = "trainer_options { solver_options { %s } }" % " ".join(
      f"{k}: {v!r}".replace("'", '"') for k, v in fields.items())
  return loader.parse_config(text).trainer_options.solver_options


_KMAX_COCO = dict(base_learning_rate=0.0005, training_number_of_steps=150000, warmup_steps=5000,
                  learning_policy="poly")


def _deeplab2_poly(step, base=0.0005, steps=150000, power=0.9):
  return base * (1 - min(step, steps) / steps) ** power


def test_warmup_is_deeplab2s_formula_bitwise():
  schedule = optimizer_builder.learning_rate_schedule(_solver(**_KMAX_COCO))
  step_variable = tf.Variable(0, dtype=tf.int64)
  in_graph = tf.function(lambda: schedule(step_variable))
  steps = np.arange(0, 5000, 7)
  base = np.float32(0.0005)
  # DeepLab2's trainer_utils.WarmUp: initial_learning_rate * (step / warmup_steps).
  eager_expected = base * (steps.astype(np.float32) / np.float32(5000))
  eager = np.array([schedule(int(s)).numpy() for s in steps])
  np.testing.assert_array_equal(eager, eager_expected)

  def deeplab2_in_graph():
    return base * (tf.cast(step_variable, tf.float32) / tf.cast(5000, tf.float32))
  deeplab2_in_graph = tf.function(deeplab2_in_graph)
  for step in steps[::10]:
    step_variable.assign(int(step))
    assert in_graph().numpy() == deeplab2_in_graph().numpy()
  # After the warm-up, the decay at the global step itself.
  for step in (5000, 5001, 75000, 149999, 150000, 160000):
    np.testing.assert_allclose(float(schedule(step)), _deeplab2_poly(step), rtol=2e-3, atol=1e-12)


def test_library_linear_warmup_ramps_to_a_lower_rate():
  poly = tf_keras.optimizers.schedules.PolynomialDecay(0.0005, 150000, 0.0, power=0.9)
  linear = lr_schedule.LinearWarmup(poly, 5000, 0.0)
  polynomial = lr_schedule.PolynomialWarmUp(poly, 5000, power=1.0)
  schedule = optimizer_builder.learning_rate_schedule(_solver(**_KMAX_COCO))
  steps = (1, 1000, 2500, 4999)
  ratios = [float(linear(s)) / float(schedule(s)) for s in steps]
  np.testing.assert_allclose(ratios, (1 - 5000 / 150000) ** 0.9, rtol=1e-5)
  assert 0.029 < 1 - ratios[0] < 0.031
  assert float(schedule(0)) == 0.0 and float(polynomial(0)) > 0.0


def test_negative_warmup_is_a_config_error():
  with pytest.raises(ConfigError, match="warmup_steps"):
    optimizer_builder.learning_rate_schedule(_solver(warmup_steps=-1))

# ---------------------------------------------------------------- AdamW


def _train(make_optimizer, steps):
  rng = np.random.RandomState(0)
  shapes = {"conv/kernel": [3, 3, 4, 8], "conv/bias": [8], "dense/weight": [16, 3],
            "bn/gamma": [8]}
  variables = {k: tf.Variable(rng.randn(*s).astype(np.float32), name=k) for k, s in shapes.items()}
  grads = [{k: (rng.randn(*s) * 3).astype(np.float32) for k, s in shapes.items()}
           for _ in range(steps)]
  optimizer = make_optimizer([v for k, v in variables.items() if k.endswith(("kernel", "weight"))])

  @tf.function
  def step(gradients):
    optimizer.apply_gradients([(gradients[k], variables[k]) for k in shapes])

  for gradients in grads:
    step({k: tf.constant(g) for k, g in gradients.items()})
  return {k: v.numpy() for k, v in variables.items()}


_LR = tf_keras.optimizers.schedules.PolynomialDecay(1e-3, 100, 0.0, power=0.9)


def _ours(decayed):
  return AdamWeightDecay(learning_rate=_LR, weight_decay=0.05, decayed_variables=decayed)


def _library(clip_norm):
  def make(unused_decayed):
    return legacy_adamw.AdamWeightDecay(
        learning_rate=_LR, weight_decay_rate=0.05, include_in_weight_decay=[r".*(kernel|weight):0$"],
        exclude_from_weight_decay=[r".*$"], gradient_clip_norm=clip_norm)
  return make


@pytest.mark.parametrize("steps", [1, 5])
def test_library_adamw_with_deeplab2_arguments_equals_ours(steps):
  ours = _train(_ours, steps)
  deeplab2_arguments = _train(_library(0.0), steps)
  default_clip = _train(_library(1.0), steps)
  for key, value in ours.items():
    np.testing.assert_array_equal(deeplab2_arguments[key], value, err_msg=key)
  # The library's default clips the global gradient norm to 1 (DeepLab2 does not).
  clip_difference = max(np.max(np.abs(default_clip[k] - v)) for k, v in ours.items())
  assert 1e-5 < clip_difference < 1e-3


_MIRRORED_LIBRARY = r"""
import json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from official.modeling.optimization import legacy_adamw
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
  kernel = tf.Variable([2.0, -1.0], name="conv/kernel")
  optimizer = legacy_adamw.AdamWeightDecay(
      learning_rate=0.1, weight_decay_rate=0.5, include_in_weight_decay=[r".*(kernel|weight):0$"],
      exclude_from_weight_decay=[r".*$"], gradient_clip_norm=0.0)

@tf.function
def step():
  strategy.run(lambda: optimizer.apply_gradients([(tf.constant([0.3, -0.2]), kernel)]))

for _ in range(3):
  step()
components = strategy.experimental_local_results(kernel)
print(json.dumps({"names": [c.name for c in components],
                  "values": [c.numpy().tolist() for c in components]}))
"""


def test_library_adamw_decays_only_the_first_replica_under_mirrored_strategy():
  out = subprocess.run([sys.executable, "-c", _MIRRORED_LIBRARY], capture_output=True, text=True,
                       timeout=300, check=True).stdout
  result = json.loads(out.strip().splitlines()[-1])
  assert result["names"] == ["conv/kernel:0", "conv/kernel/replica_1:0"]
  first, second = result["values"]
  # Replica 0 decayed (as ours does on both, test_adam_weight_decay.py), replica 1 did not.
  np.testing.assert_allclose(first, [1.4295012, -0.57212675], rtol=1e-5)
  np.testing.assert_allclose(second, [1.7000012, -0.7000019], rtol=1e-5)
