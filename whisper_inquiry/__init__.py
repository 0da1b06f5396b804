"""Whisper Inquiry: one instrumented Whisper run, returned as a plain-data `Trace`.

    from whisper_inquiry import AnalysisOptions, analyze, load_model, load_trace, save_trace

The names load on first use, so `import whisper_inquiry.trace` (plain data) pulls in neither torch nor
whisper. `analyze` is the function even after the module `analyze.py` is imported (which would
otherwise rebind the package's attribute to the module); the module is
`importlib.import_module("whisper_inquiry.analyze")`.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__all__ = ["AnalysisOptions", "Engine", "Trace", "analyze", "load_model", "load_trace", "save_trace"]
_HOME = {"AnalysisOptions": "options", "Engine": "engine", "Trace": "trace", "analyze": "analyze",
         "load_model": "models", "load_trace": "serialize", "save_trace": "serialize"}

if TYPE_CHECKING:
    from .analyze import analyze
    from .engine import Engine
    from .models import load_model
    from .options import AnalysisOptions
    from .serialize import load_trace, save_trace
    from .trace import Trace


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)


class _Package(types.ModuleType):
    """Python's documented way to customise a module's attribute setting (sys.modules[...].__class__)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "analyze" and isinstance(value, types.ModuleType):
            return  # the import system binding the submodule: the public name stays the function
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
