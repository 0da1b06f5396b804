"""Values computed from a Trace and never stored in it: head summaries, a head at full resolution, sizes.

The Trace stays plain frozen data; what is worth computing once (the per-head summaries) is cached here,
in one bounded, documented cache keyed by `trace_key`: a hash of what the values depend on, never `id()`
(a freed trace's id is reused by the next one). A trace loaded from a file and the run it came from share
a key, and so share their cached values.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from whisper_inquiry.instruments.attention import content_positions, head_from_qk, summaries_from_qk
from whisper_inquiry.trace.schema import HeadSummaries, Trace
from whisper_inquiry.trace.serialize import iter_arrays

V = TypeVar("V")


class BoundedCache:
    """The project's one small LRU, shared by the threads of a server (derived values, lenses, traces,
    experiment and probe results): values are immutable, so sharing them is safe, and the bound keeps a
    server's memory flat however many classes use it in a day. Two threads missing the same key at once
    both compute it; the numbers are the same."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key) -> Any:
        """The value kept for `key` (now the most recently used), or None."""
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def get_or_compute(self, key, compute: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        self.put(key, value)
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
    """One head's (n_ctx, n_ctx) float32 attention, exact from the trace's stored q and k (not cached: cheap
    to recompute, and 9 MB each). LookupError when the trace kept none; `Engine.head` then recomputes it
    with the model."""
    enc = trace.windows[window].encoder
    if enc.qk is None:
        raise LookupError("this trace kept no queries and keys (over budget); recompute the head with the model")
    return head_from_qk(enc.qk[layer], enc.n_head, head)


def trace_nbytes(trace: Trace) -> int:
    """Bytes held in arrays: what a trace costs to keep in memory, in the app or on disk."""
    return sum(a.nbytes for a in iter_arrays(trace))


def head_shift(a: Trace, b: Trace, window: int = 0) -> np.ndarray:
    """(n_layer, n_head) float32: how far each encoder head's pattern moved between two runs on the same audio
    (a fine-tune against its base, say), as the Jensen-Shannon distance (base 2: 0 the same pattern, 1 nothing
    in common) between the two heads' attention rows, averaged over the rows that hold the audio itself.

    Read from the summaries' 0.3 s blocks, which both runs keep whatever their size; heads correspond only
    when the encoders have the same shape, so a ValueError says when they do not."""
    sa, sb = head_summaries(a, window), head_summaries(b, window)
    if sa.pooled.shape != sb.pooled.shape:
        raise ValueError(f"the two encoders differ in shape ({sa.n_layer} x {sa.n_head} heads against "
                         f"{sb.n_layer} x {sb.n_head}), so their heads do not correspond")
    rows = max(1, min(sa.pooled.shape[2], int(np.ceil(a.windows[window].content_s / 30.0 * sa.pooled.shape[2]))))
    p = sa.pooled[:, :, :rows].astype(np.float64)  # (n_layer, n_head, rows, 100)
    q = sb.pooled[:, :, :rows].astype(np.float64)
    p /= np.maximum(p.sum(-1, keepdims=True), 1e-12)  # float16 block means: sums off by a hair
    q /= np.maximum(q.sum(-1, keepdims=True), 1e-12)
    m = (p + q) / 2

    def kl(x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, x * np.log2(np.maximum(x, 1e-300) / np.maximum(m, 1e-300)), 0.0).sum(-1)

    js = np.sqrt(np.clip((kl(p) + kl(q)) / 2, 0.0, 1.0))  # (n_layer, n_head, rows)
    return js.mean(-1).astype(np.float32)
