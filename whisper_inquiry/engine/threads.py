"""The one process-wide setting an engine wants, set by the launchers that run one, never by the engine."""

from __future__ import annotations

import sys

SWITCH_INTERVAL_S = 1e-4


def switch_threads_often(interval_s: float = SWITCH_INTERVAL_S) -> None:
    """Shorten the interpreter's thread switch interval, for a process whose engine shares it with other
    Python threads (an app server, a test run, a Ray Serve replica). Every torch call releases the GIL,
    and a thread that wants it back waits until the holder lets go: at Python's default interval (5 ms)
    up to 5 ms per call whenever another thread has Python work to do (a page being drawn, a trace being
    assembled); docs/performance.md ("The interpreter's switch interval") has the measurements.
    Process-wide, so the launchers call it (scripts/serve.py, the Ray Serve replica, tests/conftest.py),
    never a constructor; it only ever shortens the interval."""
    sys.setswitchinterval(min(sys.getswitchinterval(), interval_s))
