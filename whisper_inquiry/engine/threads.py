"""The process-wide settings an engine wants, made by the launchers that run one, never by the engine."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from pathlib import Path

SWITCH_INTERVAL_S = 1e-4
# glibc's mallopt parameters, and the sizes below which freed blocks are kept for reuse
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_BLOCKS_BYTES = 64 * 2**20
KEEP_FREE_BYTES = 512 * 2**20


def prepare_engine_process(one_team: bool = True) -> None:
    """The settings below: what every launcher of an engine calls once, at start, before any thread runs
    torch. `one_team=False` leaves torch's threads as they are (the test run: its two processes share the
    cores, and its tests run models outside any engine)."""
    switch_threads_often()
    reuse_freed_blocks()
    if one_team:
        leave_parallel_work_to_workers()


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


def leave_parallel_work_to_workers() -> None:
    """Every thread's torch work on one thread, but for the engines' workers (`use_every_core`). libgomp
    lets its idle threads spin, ready for the next parallel region, only while the process has no more
    OpenMP threads than cores; once a second thread has a team (a request thread computing its log-mel,
    the main thread), every team's threads sleep between regions, and each of the dozens of small
    kernels of a decoding step waits for them to wake: the worker's element-wise work took 3 to 4 times
    as long (docs/performance.md, "The batched step"). With one team, the worker's, it spins again.
    Process-wide, so launchers call it (`prepare_engine_process`), before the engine starts."""
    import torch

    torch.set_num_threads(1)


def use_every_core() -> int | None:
    """This thread (an engine's worker; another thread during its turn with the model) runs torch on every
    core this process may use, whatever the process default is (`leave_parallel_work_to_workers` sets it
    to one): its own OpenMP and MKL thread counts, which are per thread. Sets nothing for other threads.
    Returns the count this thread had, for `use_cores` to give back; None when it had every core already."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    had = torch.get_num_threads()  # torch sets a thread's counts from the process default at first use: now
    if had == cores:
        return None
    use_cores(cores)
    return had


def use_cores(n: int) -> None:
    """This thread's own OpenMP and MKL thread counts (torch's `set_num_threads` would also change the
    default every new thread starts from)."""
    for set_count in _thread_count_setters():
        set_count(n)


@functools.cache
def _thread_count_setters() -> tuple:
    """libgomp's and MKL's per-thread setters in the libraries torch loaded (none for another build)."""
    import torch

    lib = Path(torch.__file__).parent / "lib"
    try:
        return (ctypes.CDLL(str(lib / "libgomp.so.1")).omp_set_num_threads,
                ctypes.CDLL(str(lib / "libtorch_cpu.so")).MKL_Set_Num_Threads_Local)  # the C form, by value
    except (OSError, AttributeError):  # another build of torch: its threads stay as they are
        return ()
