"""The C allocator's tuning for a process that reads large upstream answers.

glibc serves a large allocation (a 3 MB answer's bytes, its decoded text) from mmap, which
goes back to the system when freed, but it raises that threshold each time such a block is
freed (up to 32 MB), after which blocks of that size come from the heap and stay with the
process. Measured with bench/upstream_memory.py (20 answers of 2.6 MB through the hub): the
process kept ~30 MB after a collection; with the threshold fixed at 128 KiB, ~12 MB (the
rest is Python's own small-object arenas). `tune_allocator` fixes it, once per process,
where the C library is glibc; elsewhere it does nothing. `MALLOC_MMAP_THRESHOLD_` in the
environment (glibc's own variable) wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os

__all__ = ["MMAP_THRESHOLD_BYTES", "tune_allocator"]

log = logging.getLogger("hub.memory")

#: glibc's own default before it starts raising the threshold.
MMAP_THRESHOLD_BYTES = 128 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


@functools.cache
def tune_allocator() -> bool:
    """Fix glibc's mmap threshold (True when it was set)."""
    if os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (musl, macOS): nothing to tune
        return False
    done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    log.debug("glibc mmap threshold fixed at %d bytes: %s", MMAP_THRESHOLD_BYTES, done)
    return done
