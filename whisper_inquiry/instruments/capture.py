"""Hooks on a shared model, always removed, one holder at a time.

Forward hooks are global state on a model that the app shares between sessions, and openai-whisper's
own kv-cache hooks sit on the same modules: two decodes at once on one model mix their caches. So
whoever runs a model with hooks holds that model's lock (`model_lock`: the engine's worker, for one step
or window at a time; a page recomputing one encoder head; an experiment), and everything it installs is
removed in a `finally`, an exception included. The lock is the model's own, not the process's: two
engines on two models never wait for each other. Nothing else is swapped: analyses hand
whisper.transcribe a per-request stand-in for the model instead (analyze.py).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

import greenlet
import torch

from whisper_inquiry.engine.threads import use_cores, use_every_core

_LOCKS: weakref.WeakKeyDictionary[torch.nn.Module, ModelLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()
_THREAD = threading.local()  # per thread: whether it is an engine's worker


class ModelLock:
    """One model's lock, reentrant. Where an engine's worker runs the model (`Worker`, which sets `turns`),
    any other thread first waits for a turn: the worker grants it between two steps, and the rows in
    flight then step for as long as the turn took, so a page's use of the model takes turns with
    analyses and Live listeners instead of racing the worker for the lock (a thread that lets go and
    takes it again at once would otherwise win it over and over). The worker threads themselves take it
    directly; an experiment the worker runs as a job (`Worker.experiment`, in a greenlet of its own)
    first hands the worker back its thread, which steps the rows in flight before the chunk begins."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._local = threading.local()  # this thread's depth, and the turn it holds
        self.turns: Callable[[], Callable[[], None] | None] | None = None  # waits for a turn; returns its end

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock, waiting for a turn first where a worker grants them; `blocking=False` only tries
        the lock itself (no turn: it cannot wait for one) and says whether it got it."""
        depth = getattr(self._local, "depth", 0)
        if not blocking:
            if not self._lock.acquire(blocking=False):
                return False
        else:
            if depth == 0 and self.turns is not None:
                if not getattr(_THREAD, "worker", False):
                    self._local.turn = self.turns()
                    # the worker waits out the turn: its cores are this thread's meanwhile
                    self._local.cores = use_every_core() if self._local.turn is not None else None
                elif (pause := getattr(greenlet.getcurrent(), "between_chunks", None)) is not None:
                    pause()  # a job of the worker (an experiment): the rows in flight step before this chunk
            self._lock.acquire()
        self._local.depth = depth + 1
        return True

    def held_here(self) -> bool:
        """Whether the calling thread (any of its greenlets) holds the lock."""
        return getattr(self._local, "depth", 0) > 0

    def release(self) -> None:
        self._local.depth -= 1
        self._lock.release()
        if self._local.depth == 0 and getattr(self._local, "turn", None) is not None:
            end, self._local.turn = self._local.turn, None
            if self._local.cores is not None:
                use_cores(self._local.cores)  # the thread's own count again, before the worker goes on
            end()

    def __enter__(self) -> ModelLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def model_lock(model) -> ModelLock:
    """The lock of one loaded model (reentrant: a holder may call code that takes it again). Kept by the
    model's decoder module, which a request's stand-in for the model (analyze._RequestModel) shares, so
    the stand-in and the model answer the same lock; it goes when the model does."""
    key = model.decoder
    with _LOCKS_GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = ModelLock()
    return lock


def mark_worker_thread() -> None:
    """This thread is an engine's worker: it takes model locks directly, never waiting for a turn."""
    _THREAD.worker = True


class Hooks:
    """Named capture points (`encoder.2.attn.query`) on `model`, collected into one dict; the model's lock
    is held from entry to exit, and every hook removed on exit."""

    def __init__(self, model) -> None:
        self._lock = model_lock(model)
        self.cache: dict[str, Any] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def output(self, name: str, module: torch.nn.Module,
               on_output: Callable[[str, Any], None] | None = None) -> None:
        """Keep the latest output of `module` under `name` (or hand it to `on_output`)."""

        def hook(_module, _inputs, output):
            if on_output is not None:
                on_output(name, output)
            else:
                self.cache[name] = output

        self._handles.append(module.register_forward_hook(hook))

    def __getitem__(self, name: str) -> Any:
        return self.cache[name]

    def __enter__(self) -> Hooks:
        self._lock.acquire()
        return self

    def __exit__(self, *exc) -> None:
        try:
            for handle in self._handles:
                handle.remove()
            self._handles.clear()
        finally:
            self._lock.release()
