"""The per-process kernel choices: the rule, its facts, overrides and the layers that follow it."""
import logging as py_logging

import pytest
import tf_keras

from kmax_tf import kernel_choices
from kmax_tf.layers import normalization
from kmax_tf.layers.training_fused_batch_normalization import TrainingFusedBatchNormalization

# Runs again in CI with the other oneDNN setting (.ci/run).
pytestmark = pytest.mark.kernels

AVX512 = {"avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl"}
AVX2 = {"avx", "avx2", "fma"}


@pytest.fixture
def fresh_choices(monkeypatch):
  """Clears the process cache around a test, so env overrides take effect."""
  kernel_choices.kernel_choices.cache_clear()
  yield monkeypatch
  kernel_choices.kernel_choices.cache_clear()


@pytest.mark.parametrize("flags,onednn,cap,accelerators,native", [
    (AVX2, True, "", (), True),
    (AVX512, True, "", (), True),
    (AVX512, True, "AVX2", (), True),
    # TensorFlow's own kernels: no dilated Conv2D gradient.
    (AVX2, False, "", (), False),
    (AVX512, False, "", (), False),
    # Unknown oneDNN state: the path that works everywhere.
    (AVX2, None, "", (), False),
    # Accelerators differentiate it.
    (AVX2, False, "", ("GPU:0",), True),
    (AVX2, None, "", ("TPU:0",), True),
])
def test_rule(flags, onednn, cap, accelerators, native):
  # Training-step BN is fused everywhere (inference never is: see
  # TrainingFusedBatchNormalization); dilation follows the gradient's existence.
  choices = kernel_choices.decide("cpu", flags, onednn, cap, accelerators)
  assert (choices.fused_batch_norm, choices.native_dilated_conv) == (True, native)
  assert len(choices.reasons) == 2
  assert "fused in training steps" in choices.reasons[0]
  assert ("native" if native else "shifted matrix product") in choices.reasons[1]


def test_overrides_win_and_are_named():
  choices = kernel_choices.decide("cpu", AVX2, True, "", (), fused_override=True,
                                  dilation_override=False)
  assert choices.fused_batch_norm and not choices.native_dilated_conv
  assert kernel_choices.FUSED_BATCH_NORM_ENV in choices.reasons[0]
  assert kernel_choices.NATIVE_DILATED_CONV_ENV in choices.reasons[1]


def test_kernel_mode_label():
  assert kernel_choices.decide("c", AVX2, True, "", ()).kernel_mode == "oneDNN on, no AVX-512"
  assert kernel_choices.decide("c", AVX512, False, "", ()).kernel_mode == "oneDNN off, AVX-512"
  # ONEDNN_MAX_CPU_ISA below AVX-512 makes oneDNN run its AVX2 kernels.
  assert kernel_choices.decide("c", AVX512, True, "AVX2", ()).kernel_mode == "oneDNN on, no AVX-512"
  assert kernel_choices.decide("c", AVX512, True, "avx512_core", ()).kernel_mode == (
      "oneDNN on, AVX-512")


def test_process_facts_match_tensorflow():
  from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
  choices = kernel_choices.kernel_choices()
  assert choices.onednn_enabled == _pywrap_util_port.IsMklEnabled()
  with open("/proc/cpuinfo", encoding="utf-8") as f:
    flags = next(line for line in f if line.startswith("flags")).split(":", 1)[1].split()
  assert set(choices.vector_extensions) <= set(flags)
  assert ("avx2" in choices.vector_extensions) == ("avx2" in flags)
  assert choices is kernel_choices.kernel_choices()  # decided once per process


def test_bad_override_is_refused(fresh_choices):
  fresh_choices.setenv(kernel_choices.FUSED_BATCH_NORM_ENV, "yes")
  with pytest.raises(ValueError, match=kernel_choices.FUSED_BATCH_NORM_ENV):
    kernel_choices.kernel_choices()


def test_choice_is_logged_once(fresh_choices, caplog):
  fresh_choices.setenv(kernel_choices.NATIVE_DILATED_CONV_ENV, "0")
  with caplog.at_level(py_logging.INFO):
    kernel_choices.kernel_choices()
    kernel_choices.kernel_choices()
  lines = [r.getMessage() for r in caplog.records if "kmax_tf kernels" in r.getMessage()]
  assert len(lines) == 1 and "shifted matrix product" in lines[0], lines


@pytest.mark.parametrize("fused", ["0", "1"])
def test_batch_norm_follows_the_choice(fresh_choices, fused):
  fresh_choices.setenv(kernel_choices.FUSED_BATCH_NORM_ENV, fused)
  layer = normalization.batch_norm("bn")
  layer.build([1, 4, 4, 8])
  assert layer.fused == (fused == "1")
  assert isinstance(layer, TrainingFusedBatchNormalization) == (fused == "1")
  with normalization.synchronized_batch_norm(True):
    synchronized = normalization.batch_norm("sync_bn")
  synchronized.build([1, 4, 4, 8])
  assert not synchronized.fused
  assert isinstance(layer, tf_keras.layers.BatchNormalization)
