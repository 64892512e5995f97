"""Tests of kmax_tf.runtime.heap_trimmer (the trainer's resident-memory trimming)."""
import ctypes
import ctypes.util
import os
import threading

import pytest

from kmax_tf.runtime.heap_trimmer import HeapTrimmer


def _rss_bytes():
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_trim_returns_freed_heap_pages_to_the_os():
  trimmer = HeapTrimmer()
  assert trimmer.available, "this test needs glibc's malloc_trim (Linux)"
  libc = ctypes.CDLL(ctypes.util.find_library("c"))
  libc.malloc.restype = ctypes.c_void_p
  libc.malloc.argtypes = [ctypes.c_size_t]
  libc.free.argtypes = [ctypes.c_void_p]
  # 256 MB of 4 KB blocks (below the mmap threshold, so on the heap), written
  # to so they are resident; one block allocated last pins the heap's top, so
  # glibc's own top trimming cannot return the freed space, as after graph
  # optimization.
  blocks = []
  for _ in range(65536):
    pointer = libc.malloc(4096)
    ctypes.memset(pointer, 1, 4096)
    blocks.append(pointer)
  pin = libc.malloc(4096)
  try:
    for pointer in blocks:
      libc.free(pointer)
    before = _rss_bytes()
    trimmer.trim_now()
    after = _rss_bytes()
  finally:
    libc.free(pin)
  assert before - after > 150e6, (before, after)


def test_background_thread_trims_until_stopped():
  calls = []
  event = threading.Event()

  def fake_trim(pad):
    calls.append(pad)
    if len(calls) >= 3:
      event.set()
    return 1

  with HeapTrimmer(interval_seconds=0.01, malloc_trim=fake_trim) as trimmer:
    assert event.wait(5.0), "the trimmer thread did not call malloc_trim three times in 5 s"
  count = len(calls)
  assert calls[:3] == [0, 0, 0]
  assert trimmer.trim_count == count
  event.clear()
  assert not event.wait(0.1) and len(calls) == count, "trimming went on after stop()"


def test_start_twice_is_an_error_and_bad_interval_is_rejected():
  trimmer = HeapTrimmer(interval_seconds=10.0, malloc_trim=lambda pad: 0).start()
  try:
    with pytest.raises(RuntimeError, match="already started"):
      trimmer.start()
  finally:
    trimmer.stop()
  with pytest.raises(ValueError, match="interval_seconds must be positive"):
    HeapTrimmer(interval_seconds=0)
