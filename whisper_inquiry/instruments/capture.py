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

import torch

_LOCKS: weakref.WeakKeyDictionary[torch.nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(model) -> threading.RLock:
    """The lock of one loaded model (reentrant: a holder may call code that takes it again). Kept by the
    model's decoder module, which a request's stand-in for the model (analyze._RequestModel) shares, so
    the stand-in and the model answer the same lock; it goes when the model does."""
    key = model.decoder
    with _LOCKS_GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = threading.RLock()
    return lock


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
