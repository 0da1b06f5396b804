"""Values computed from a Trace and never stored in it: head summaries, a head at full resolution, sizes.

The Trace stays plain frozen data; what is worth computing once (the per-head summaries, 0.1 s for
tiny.en) is cached here, in one bounded, documented cache keyed by `trace_key`: a hash of what the
values depend on, never `id()` (a freed trace's id is reused by the next one). A trace loaded from a
file and the run it came from share a key, and so share their cached values.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from .attention import content_positions, head_from_qk, summaries_from_qk
from .serialize import iter_arrays
from .trace import HeadSummaries, Trace

V = TypeVar("V")


class BoundedCache:
    """A small LRU shared by the threads of a server: values are immutable, so sharing them is safe.
    Two threads missing the same key at once both compute it; the numbers are the same."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get_or_compute(self, key, compute: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)


SUMMARIES = BoundedCache(64)  # about 0.5 MB each on tiny.en, 2.4 MB on base: at most about 150 MB


def trace_key(trace: Trace) -> str:
    """A content hash of what derived values depend on: the audio, the model, the options and the tokens
    of every attempt (sampling can draw other tokens from the same audio and options)."""
    h = hashlib.sha1(np.ascontiguousarray(trace.audio).view(np.uint8))
    h.update(repr((trace.model.name, trace.model.dims, trace.options)).encode())
    for window in trace.windows:
        h.update(repr((window.start_s, window.content_s)).encode())
        for attempt in window.attempts:
            h.update(np.asarray(attempt.tokens, dtype=np.int64).tobytes() + b"|")
    return h.hexdigest()


def head_summaries(trace: Trace, window: int) -> HeadSummaries:
    """Thumbnails, entropy and mean distance of every encoder head of one window (see HeadSummaries):
    kept in the trace when it could not keep q and k, else computed once from them and cached."""
    enc = trace.windows[window].encoder
    if enc.summaries is not None:
        return enc.summaries
    n_content = content_positions(trace.windows[window].content_s, enc.qk.shape[2])
    return SUMMARIES.get_or_compute((trace_key(trace), window),
                                    lambda: summaries_from_qk(enc.qk, enc.n_head, n_content))


def full_head(trace: Trace, window: int, layer: int, head: int) -> np.ndarray:
    """One head's (n_ctx, n_ctx) float32 attention, exact from the trace's stored q and k (7 ms, not cached:
    9 MB each). LookupError when the trace kept none; `Engine.head` then recomputes it with the model."""
    enc = trace.windows[window].encoder
    if enc.qk is None:
        raise LookupError("this trace kept no queries and keys (over budget); recompute the head with the model")
    return head_from_qk(enc.qk[layer], enc.n_head, head)


def trace_nbytes(trace: Trace) -> int:
    """Bytes held in arrays: what a trace costs to keep in memory, in the app or on disk."""
    return sum(a.nbytes for a in iter_arrays(trace))
