"""Which TensorFlow kernels kmax_tf builds its layers for, decided once per process.

The same network runs on CPUs with and without AVX-512, with TensorFlow's oneDNN
kernels on or off (on by default only where the CPU has AVX-512, or where
`TF_ENABLE_ONEDNN_OPTS=1`), and on GPUs and TPUs. Two layer choices depend on that:

- Batch normalization in training steps, fused or not. The fused kernel was
  the faster one with every kernel set measured, so it is the default; at
  inference every BN computes the plain formula whatever is chosen here
  (`TrainingFusedBatchNormalization` says why: grappler would fold a fused BN
  into convolutions that oneDNN has no fast AVX2 kernel for).
- Dilated convolutions as one native `Conv2D` op or as a matrix product of
  shifted views (`DilatedConv2D`). TensorFlow's own (Eigen) CPU kernels have no
  gradient for dilated `Conv2D`, whatever the shape; oneDNN's kernels, GPUs and
  TPUs do.

The choice is made from facts that cannot be fooled by a small probe: whether
oneDNN is enabled in this process, the CPU's vector extensions (and
`ONEDNN_MAX_CPU_ISA`, which caps what oneDNN uses), and the visible accelerators.
`KMAX_TF_FUSED_BATCH_NORM` and `KMAX_TF_NATIVE_DILATED_CONV` (0 or 1) override it.
The decision is logged once. Variables and checkpoints are the same either way;
only the graph differs, so a SavedModel keeps the choice of the process that
exported it.
"""
import dataclasses
import functools
import os
import platform
from typing import Optional, Tuple

from absl import logging
import tensorflow as tf

FUSED_BATCH_NORM_ENV = "KMAX_TF_FUSED_BATCH_NORM"
NATIVE_DILATED_CONV_ENV = "KMAX_TF_NATIVE_DILATED_CONV"

# CPU flags (as /proc/cpuinfo spells them) worth recording with a measurement.
REPORTED_EXTENSIONS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw",
                       "avx512vl", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")
# What oneDNN needs for its AVX-512 ("avx512_core") kernels.
_AVX512_CORE = ("avx512f", "avx512dq", "avx512bw", "avx512vl")
_ONEDNN_ISA_ENVS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


@dataclasses.dataclass(frozen=True)
class KernelChoices:
  """The facts about this process and the kernel choices made from them."""
  cpu_model: str
  vector_extensions: Tuple[str, ...]
  onednn_enabled: Optional[bool]
  onednn_max_cpu_isa: str
  accelerators: Tuple[str, ...]
  fused_batch_norm: bool
  native_dilated_conv: bool
  reasons: Tuple[str, ...]

  @property
  def kernel_mode(self) -> str:
    """A short label for benchmark records, e.g. 'oneDNN on, AVX-512'."""
    onednn = {True: "oneDNN on", False: "oneDNN off", None: "oneDNN unknown"}[self.onednn_enabled]
    return f"{onednn}, {'AVX-512' if onednn_has_avx512(self) else 'no AVX-512'}"

  def as_dict(self):
    return dict(dataclasses.asdict(self), kernel_mode=self.kernel_mode)


def onednn_has_avx512(choices: KernelChoices) -> bool:
  """Whether oneDNN may use its AVX-512 kernels on this CPU, given its ISA cap.

  Args:
    choices: KernelChoices holding the CPU's vector extensions and the
      ONEDNN_MAX_CPU_ISA cap.
  """
  cap = choices.onednn_max_cpu_isa.upper()
  capped = cap not in ("", "ALL", "DEFAULT") and "AVX512" not in cap and "AMX" not in cap
  return not capped and all(f in choices.vector_extensions for f in _AVX512_CORE)


def _cpu_facts():
  """(model name, set of CPU flags) of the first CPU; flags empty where unreadable."""
  model, flags = platform.processor() or platform.machine(), set()
  try:
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
          model = value.strip()
        elif key.strip() in ("flags", "Features"):
          flags = set(value.split())
          break
  except OSError:
    pass
  return model, flags


def _onednn_enabled() -> Optional[bool]:
  try:
    from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return bool(_pywrap_util_port.IsMklEnabled())


def _override(name) -> Optional[bool]:
  value = os.environ.get(name, "").strip()
  if not value:
    return None
  if value not in ("0", "1"):
    raise ValueError(f"Environment variable {name} must be 0 or 1, got {value!r}.")
  return value == "1"


def decide(cpu_model, cpu_flags, onednn_enabled, onednn_max_cpu_isa, accelerators,
           fused_override=None, dilation_override=None) -> KernelChoices:
  """The rule, from facts (kept apart from their gathering so it can be tested).

  Args:
    cpu_model: CPU model name (reported only).
    cpu_flags: the CPU's feature flags, e.g. /proc/cpuinfo's {'avx2', ...}.
    onednn_enabled: whether TensorFlow runs oneDNN kernels; None if unknown.
    onednn_max_cpu_isa: the ONEDNN_MAX_CPU_ISA setting ('' if unset).
    accelerators: visible GPU/TPU devices, e.g. ('GPU:0',); empty on CPU only.
    fused_override: forced fused batch norm (True/False), or None for the rule.
    dilation_override: forced native dilated conv (True/False), or None.
  """
  facts = KernelChoices(cpu_model=cpu_model,
                        vector_extensions=tuple(sorted(set(cpu_flags) & set(
                            REPORTED_EXTENSIONS + _AVX512_CORE))),
                        onednn_enabled=onednn_enabled, onednn_max_cpu_isa=onednn_max_cpu_isa,
                        accelerators=tuple(accelerators), fused_batch_norm=False,
                        native_dilated_conv=False, reasons=())
  reasons = []
  if fused_override is not None:
    fused = fused_override
    reasons.append(f"batch norm {'fused' if fused else 'non-fused'}: {FUSED_BATCH_NORM_ENV}")
  else:
    fused = True
    reasons.append("batch norm fused in training steps (the fastest kernel with Eigen, "
                   "oneDNN and cuDNN), plain formula at inference")
  if dilation_override is not None:
    native = dilation_override
    reasons.append(f"dilated conv {'native' if native else 'shifted matrix product'}: "
                   f"{NATIVE_DILATED_CONV_ENV}")
  elif accelerators:
    native = True
    reasons.append(f"dilated conv native: {accelerators[0]} differentiates it")
  elif onednn_enabled:
    native = True
    reasons.append("dilated conv native: oneDNN differentiates it")
  else:
    native = False
    reasons.append("dilated conv as shifted matrix product: TensorFlow's own CPU kernels "
                   "have no dilated Conv2D gradient" if onednn_enabled is False else
                   "dilated conv as shifted matrix product: oneDNN state unknown")
  return dataclasses.replace(facts, fused_batch_norm=fused, native_dilated_conv=native,
                             reasons=tuple(reasons))


@functools.lru_cache(maxsize=None)
def kernel_choices() -> KernelChoices:
  """This process's choices; the first call gathers the facts and logs the decision."""
  model, flags = _cpu_facts()
  isa_cap = next((os.environ[e] for e in _ONEDNN_ISA_ENVS if os.environ.get(e)), "")
  accelerators = tuple(f"{d.device_type}:{i}" for kind in ("GPU", "TPU")
                       for i, d in enumerate(tf.config.list_logical_devices(kind)))
  choices = decide(model, flags, _onednn_enabled(), isa_cap, accelerators,
                   _override(FUSED_BATCH_NORM_ENV), _override(NATIVE_DILATED_CONV_ENV))
  logging.info("kmax_tf kernels: %s; CPU %s (%s)%s. %s.", choices.kernel_mode, choices.cpu_model,
               " ".join(choices.vector_extensions) or "flags unknown",
               f", accelerators {', '.join(accelerators)}" if accelerators else "",
               "; ".join(choices.reasons))
  return choices
