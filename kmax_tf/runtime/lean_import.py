"""Imports TensorFlow and tf_keras without the modules kmax_tf's processes never use.

kmax_tf runs on tf_keras. `import tensorflow` (2.16+) also imports Keras 3's
optimizers, so that Keras 3 optimizers register themselves with the SavedModel
loader, and through them all of Keras 3, which pulls in scikit-learn,
matplotlib and OpenCV; tf_keras then imports pandas (and pyarrow), used only
to accept DataFrames in Model.fit. kmax_tf uses none of them. Measured on the
training entry point: 734 MB resident after the imports, 569 MB without them,
and about 1 s less import time.

Both imports are optional on TensorFlow's and tf_keras's side (each sits in a
try/except ImportError), so blocking them only for the duration of the import
is safe: afterwards `tf.keras` and `import pandas` still work and load the
modules on first use.

Call this in an entry point before anything imports TensorFlow (the trainer
does); in a process that already imported TensorFlow there is nothing to save
and it does nothing.
"""
import sys

# Optional imports of TensorFlow and tf_keras that kmax_tf does not need.
SKIPPED_MODULES = ("keras.src.optimizers", "pandas")


def import_tensorflow_lean():
  """Imports tensorflow and tf_keras, skipping SKIPPED_MODULES; returns tensorflow."""
  if "tensorflow" not in sys.modules:
    blocked = [name for name in SKIPPED_MODULES if name not in sys.modules]
    for name in blocked:
      # A None entry makes `import name` raise ImportError without loading it.
      sys.modules[name] = None
    try:
      import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
      import tf_keras  # pylint: disable=g-import-not-at-top,unused-import
    finally:
      for name in blocked:
        if name in sys.modules and sys.modules[name] is None:
          del sys.modules[name]
  return sys.modules["tensorflow"]
