"""The worker process's memory: the collector's thresholds, and glibc's malloc kept from
holding on to what the process freed.

A worker keeps a fleet's state (millions of small long-lived objects, and arrays of a few KB:
references, rings) while hundreds of thousands of short-lived objects a second come and go
around them. These functions are process-wide; ``driftline worker`` and ``driftline replay``
call them once at start, and the worker calls :func:`release_free_memory` on a timer.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os

__all__ = ["fix_malloc_threshold", "release_free_memory", "tune_gc"]

#: glibc's mallopt parameter number for the mmap threshold.
_M_MMAP_THRESHOLD = -3


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, loaded once (``find_library`` runs a subprocess: not every 30 s)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def tune_gc() -> None:
    """Collect the young generation every 100k allocations instead of 700.

    A worker holds millions of long-lived objects (references, waiting predictions) and
    allocates hundreds of thousands of short-lived ones per second (events); at CPython's
    default thresholds the collector ran ~400 times per 400k events and doubled the cost of
    decoding them (7.3 vs 3.1 us per event, measured). What was allocated at start-up is frozen
    out of collection altogether.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def fix_malloc_threshold(size: int = 128 * 1024) -> bool:
    """Serve blocks of ``size`` bytes and more from mmap, always (glibc only; True if set).

    glibc raises its mmap threshold whenever such a block is freed, up to 32 MiB; from then on
    large blocks (Kafka fetch responses, state records, producer batches) come from the heap,
    whose free space is seldom returned: the RSS of a busy worker drifted up by tens of MiB
    and swung by more with every checkpoint. Setting the threshold stops the adjustment
    (``man mallopt``): ``python bench/worker.py --only memory`` measured 580 MiB after warm-up
    without, 477 MiB with. A ``MALLOC_MMAP_THRESHOLD_`` in the environment is left to rule.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        return bool(_libc().mallopt(_M_MMAP_THRESHOLD, size))  # type: ignore[union-attr]
    except AttributeError:  # not glibc (musl, macOS): nothing to tune
        return False


def release_free_memory() -> bool:
    """Give the pages that glibc's heap holds free back to the system (``malloc_trim(0)``;
    glibc only: True if it released any).

    Blocks between 512 bytes (pymalloc's limit) and the mmap threshold come from glibc's heap.
    Freed, they return to it, and the heap's free space stays resident as long as anything
    lives above it: blocks of a few KB freed between a fleet's long-lived arrays leave whole
    free pages in the middle of the heap. ``malloc_trim`` walks the heap and hands those pages
    back (``man malloc_trim``): at 1,000 models x 20 features, in-process, 1,078 MiB of RSS
    became 983 MiB in 23 ms. A page that is used again is faulted back in on first touch.
    """
    try:
        return bool(_libc().malloc_trim(0))  # type: ignore[union-attr]
    except AttributeError:  # not glibc (musl, macOS): nothing to release
        return False
