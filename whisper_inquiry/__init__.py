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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

__all__ = ["AnalysisOptions", "Engine", "Trace", "analyze", "load_model", "load_trace", "save_trace"]
_HOME = {"AnalysisOptions": "options", "Engine": "engine.core", "Trace": "trace.schema", "analyze": "analyze",
         "load_model": "models.load", "load_trace": "trace.serialize", "save_trace": "trace.serialize"}

if TYPE_CHECKING:
    from whisper_inquiry.analyze import analyze
    from whisper_inquiry.engine.core import Engine
    from whisper_inquiry.models.load import load_model
    from whisper_inquiry.options import AnalysisOptions
    from whisper_inquiry.trace.schema import Trace
    from whisper_inquiry.trace.serialize import load_trace, save_trace


def lazy_names(package: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """A package's `__getattr__` that imports a name's module on first use: a subpackage can name its
    public parts without importing them (and without import cycles between subpackages)."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f".{homes[name]}", package), name)

    return __getattr__


__getattr__ = lazy_names(__name__, _HOME)


class _Package(types.ModuleType):
    """Python's documented way to customise a module's attribute setting (sys.modules[...].__class__)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "analyze" and isinstance(value, types.ModuleType):
            return  # the import system binding the submodule: the public name stays the function
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
