"""Start several requests at once so that the engine's worker sees them together."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence


def in_flight_together(worker, calls: Sequence[Callable[[], object]]) -> None:
    """Run each call in its own thread, all counted in flight (`Worker.begin`) before any queues a
    window, so the worker waits for every one of them and their windows start together."""
    for _ in calls:
        worker.begin()
    threads = [threading.Thread(target=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for _ in calls:
        worker.end()
