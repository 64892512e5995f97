"""Tests of kmax_tf.runtime.lean_import (what trainer.py imports TensorFlow with)."""
import json
import subprocess
import sys

CHILD = r"""
import json, sys
from kmax_tf.runtime.lean_import import import_tensorflow_lean, SKIPPED_MODULES
tf = import_tensorflow_lean()
import tf_keras
from kmax_tf.training import experiment  # the trainer's imports
result = {
    "loaded_during_import": sorted(m for m in ("keras", "pandas", "sklearn", "matplotlib", "cv2")
                                   if m in sys.modules),
    "none_entries": [m for m in SKIPPED_MODULES if m in sys.modules and sys.modules[m] is None],
    "tf_keras_works": float(tf_keras.layers.Dense(1, kernel_initializer="ones")(
        tf.ones([1, 2]))[0, 0]),
}
# Both skipped imports still work afterwards, on first use.
import pandas
result["pandas_after"] = pandas.DataFrame({"a": [1, 2]})["a"].sum().item()
result["tf_keras_3_after"] = tf.keras.layers.Dense.__module__.split(".")[0]
print(json.dumps(result))
"""


def test_trainer_imports_skip_keras3_and_pandas_and_both_still_load_later():
  out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                       timeout=300, check=True).stdout
  result = json.loads(out.strip().splitlines()[-1])
  assert result["loaded_during_import"] == [], result
  assert result["none_entries"] == [], result
  assert result["tf_keras_works"] == 2.0
  assert result["pandas_after"] == 3
  assert result["tf_keras_3_after"] == "keras"


def test_does_nothing_once_tensorflow_is_imported():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from kmax_tf.runtime.lean_import import import_tensorflow_lean  # pylint: disable=g-import-not-at-top
  before = set(sys.modules)
  assert import_tensorflow_lean() is tf
  assert set(sys.modules) == before
