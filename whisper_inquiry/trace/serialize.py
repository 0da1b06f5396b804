"""Save and load a Trace as one `.npz` file (arrays) holding a JSON document (everything else).

No pickle anywhere: a trace from a stranger is data, never code. The JSON mirrors the dataclasses
field by field, and each array is replaced by the name it has in the npz, so the file is readable
with numpy and a JSON viewer alone.

Older files load when this version can read them: a field a file lacks takes its default (version 1
had no `Window.captured`), and version 1's per-head summaries, averaged over the 30 s padding too, are
dropped where the queries and keys are there to recompute them over the audio's own frames. A file
of an unknown version is refused with one line that names it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from whisper_inquiry.errors import InquiryError, TraceFormatError
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.trace import schema as T

_ARRAY_KEY = "__array__"
READABLE_VERSIONS = (1, T.TRACE_VERSION)
_TYPES = {**vars(T), "AnalysisOptions": AnalysisOptions}  # names the Trace's annotations use


def _encode(obj: Any, arrays: dict[str, np.ndarray], path: str) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _encode(getattr(obj, f.name), arrays, f"{path}.{f.name}") for f in dataclasses.fields(obj)}
    if isinstance(obj, np.ndarray):
        arrays[path] = obj
        return {_ARRAY_KEY: path}
    if isinstance(obj, (list, tuple)):
        return [_encode(v, arrays, f"{path}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        return {str(k): _encode(v, arrays, f"{path}.{k}") for k, v in obj.items()}
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, float) and obj != obj:
        return "NaN"
    return obj


def _decode(tp: Any, data: Any, arrays: dict[str, np.ndarray]) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if data is None:
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(inner[0], data, arrays)
    if isinstance(data, dict) and _ARRAY_KEY in data:
        return arrays[data[_ARRAY_KEY]]
    if tp is AnalysisOptions:
        return AnalysisOptions.from_dict(data)  # options added since the file was written take their defaults
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp, _TYPES)
        return tp(**{f.name: _decode(hints[f.name], data[f.name], arrays) for f in dataclasses.fields(tp)
                     if f.name in data or _required(f)})
    if origin is list:
        (item,) = typing.get_args(tp)
        return [_decode(item, v, arrays) for v in data]
    if origin is dict:
        _, value = typing.get_args(tp)
        return {k: _decode(value, v, arrays) for k, v in data.items()}
    if tp is float:
        return float("nan") if data == "NaN" else float(data)
    return data


def _required(f: dataclasses.Field) -> bool:
    """A field without a default must be in the file (a KeyError names it); one with a default may be absent."""
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _upgrade(doc: dict) -> dict:
    """A version-1 document as version 2 reads it: summaries kept with q and k were over the whole window."""
    if doc.get("version") == 1:
        for window in doc.get("windows", []):
            encoder = window.get("encoder", {})
            if encoder.get("qk") is not None:
                encoder["summaries"] = None
        doc["version"] = T.TRACE_VERSION
    return doc


def trace_to_bytes(trace: T.Trace) -> bytes:
    """The npz file's bytes: every array under its field path, plus `trace.json` for the rest."""
    arrays: dict[str, np.ndarray] = {}
    doc = _encode(trace, arrays, "trace")
    arrays["trace.json"] = np.frombuffer(json.dumps(doc).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def save_trace(trace: T.Trace, path: str | Path) -> None:
    Path(path).write_bytes(trace_to_bytes(trace))


def load_trace(source: str | Path | bytes) -> T.Trace:
    """Read a trace written by `save_trace`; arrays are loaded eagerly, never with pickle."""
    file = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError) as exc:
        raise TraceFormatError(f"not a Whisper Inquiry trace: {exc}") from None
    if "trace.json" not in arrays:
        raise TraceFormatError("not a Whisper Inquiry trace: no trace.json inside")
    doc = json.loads(arrays.pop("trace.json").tobytes().decode("utf-8"))
    version = doc.get("version")
    if version not in READABLE_VERSIONS:
        raise TraceFormatError(f"trace version {version} cannot be read here: this Whisper Inquiry "
                               f"reads versions {', '.join(map(str, READABLE_VERSIONS))}")
    try:
        return _decode(T.Trace, _upgrade(doc), arrays)
    except (KeyError, TypeError, ValueError, InquiryError) as exc:
        raise TraceFormatError(f"damaged trace (version {version}): {type(exc).__name__} {exc}") from None


def iter_arrays(obj: Any) -> Iterator[np.ndarray]:
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            yield from iter_arrays(getattr(obj, f.name))
    elif isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from iter_arrays(v)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from iter_arrays(v)
