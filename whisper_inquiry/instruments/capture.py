"""Hooks on the shared model, always removed, one holder at a time.

Forward hooks are global state on a model that the app shares between sessions, and openai-whisper's
own kv-cache hooks sit on the same modules: two decodes at once on one model mix their caches. So
whoever runs the model with hooks holds `RUN_LOCK` (the engine's batching worker, for one batch at a
time; a page recomputing one encoder head), and everything it installs is removed in a `finally`, an
exception included. Nothing else is swapped: analyses hand whisper.transcribe a per-request stand-in
for the model instead (analyze.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch

RUN_LOCK = threading.RLock()


class Hooks:
    """Named capture points (`encoder.2.attn.query`) collected into one dict, removed on exit."""

    def __init__(self) -> None:
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
        RUN_LOCK.acquire()
        return self

    def __exit__(self, *exc) -> None:
        try:
            for handle in self._handles:
                handle.remove()
            self._handles.clear()
        finally:
            RUN_LOCK.release()
