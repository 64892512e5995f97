import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
