import ctypes
import gc
import os
import resource
import shutil

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _malloc_trim():
  try:
    return ctypes.CDLL("libc.so.6").malloc_trim
  except (OSError, AttributeError):  # not glibc: nothing to trim
    return None


_TRIM = _malloc_trim()


@pytest.fixture(autouse=True, scope="module")
def _release_memory_after_each_module(request):
  """Frees what a test module's models and traced functions held.

  A pytest-xdist worker runs hundreds of tests in one process; without this its
  resident memory grew to 16 GB (Keras' global graph state, and freed heap that
  glibc keeps) and the kernel's OOM killer ended it on a 24 GB machine.
  """
  before = _rss_mb()
  yield
  import tf_keras  # pylint: disable=g-import-not-at-top
  tf_keras.backend.clear_session()
  gc.collect()
  if _TRIM is not None:
    _TRIM(0)
  log = os.environ.get("KMAX_TEST_RSS_LOG")
  if log:  # where a worker's memory goes: one line per module
    with open(log, "a", encoding="utf-8") as f:
      peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
      f.write(f"{os.getpid()} {request.module.__name__} rss_mb {before:.0f} -> {_rss_mb():.0f}"
              f" peak_so_far {peak:.0f}\n")


def _rss_mb():
  try:
    with open("/proc/self/statm", encoding="ascii") as f:
      return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
  except OSError:
    return float("nan")


@pytest.fixture(scope="module")
def module_scratch(tmp_path_factory):
  """`tmp_path_factory` for module-scoped fixtures, emptied when the module ends.

  Checkpoints, SavedModels and TFLite files of a full-size model are hundreds of
  MB each; kept until the session ends they filled a CI machine's /tmp (pytest
  then failed every later test with "could not create numbered dir").
  """
  made = []

  class _Scratch:

    def mktemp(self, basename):
      path = tmp_path_factory.mktemp(basename)
      made.append(path)
      return path

  yield _Scratch()
  for path in made:
    shutil.rmtree(path, ignore_errors=True)


def pytest_addoption(parser):
  parser.addoption("--run-large", action="store_true", default=False,
                   help="also run tests marked `large` (slow; opt-in)")


def pytest_collection_modifyitems(config, items):
  if config.getoption("--run-large"):
    return
  opt_in = pytest.mark.skip(reason="large test: opt-in with --run-large")
  for item in items:
    if "large" in item.keywords:
      item.add_marker(opt_in)
