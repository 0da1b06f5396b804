"""The process-wide settings an engine wants, made by the launchers that run one, never by the engine."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

SWITCH_INTERVAL_S = 1e-4
# glibc's mallopt parameters, and the sizes below which freed blocks are kept for reuse
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_BLOCKS_BYTES = 64 * 2**20
KEEP_FREE_BYTES = 512 * 2**20


def prepare_engine_process() -> None:
    """Both settings below: what every launcher of an engine calls once, at start."""
    switch_threads_often()
    reuse_freed_blocks()


def switch_threads_often(interval_s: float = SWITCH_INTERVAL_S) -> None:
    """Shorten the interpreter's thread switch interval, for a process whose engine shares it with other
    Python threads (an app server, a test run, a Ray Serve replica). Every torch call releases the GIL,
    and a thread that wants it back waits until the holder lets go: at Python's default interval (5 ms)
    up to 5 ms per call whenever another thread has Python work to do (a page being drawn, a trace being
    assembled); docs/performance.md ("The interpreter's switch interval") has the measurements.
    Process-wide, so the launchers call it (scripts/serve.py, the Ray Serve replica, tests/conftest.py),
    never a constructor; it only ever shortens the interval."""
    sys.setswitchinterval(min(sys.getswitchinterval(), interval_s))


def reuse_freed_blocks() -> bool:
    """Keep freed blocks of up to 64 MB in the allocator for the next step instead of returning them to
    the system. A decoding step on a CPU makes and frees a dozen tensors of rows x vocabulary; glibc
    hands blocks that large straight back to the kernel, so every step paid page faults to get fresh,
    zeroed memory again (docs/performance.md, "The batched step", has what it cost). Process-wide, like
    the switch interval; a no-op where the C library is not glibc. Returns whether it was set."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, KEEP_BLOCKS_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_FREE_BYTES))
