"""Capture points: every module output a run records, in one registry, named by its real module path.

As TransformerLens names its hook points by place (`blocks.0.attn.hook_pattern`), a capture point is
the path `model.get_submodule` takes (`encoder.blocks.3.attn.query`), with `{layer}` standing for each
block. The core points are read by `analyze.py` and `alignment.py` into the Trace's typed fields. A new
recorded internal is one `register(CapturePoint(..., keep=fn))`: its output, turned into an array by
`keep`, lands in `Window.captured` under its module path, saved and loaded with the rest of the Trace.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

RUN = "run"  # hooked for the whole run; the latest output is read when a window starts (after its first decode)
TEACHER_FORCED = "teacher_forced"  # hooked during the one teacher-forced decoder pass of each attempt


@dataclass(frozen=True)
class CapturePoint:
    path: str  # module path inside openai-whisper's `Whisper`; "{layer}" is replaced by each block's index
    stage: str  # RUN or TEACHER_FORCED
    why: str
    # output of one module (batch first) -> what the Window keeps; None for the core points, read by analyze.py
    keep: Callable[[Any], np.ndarray] | None = None

    def names(self, model) -> list[str]:
        """The module paths this point stands for in `model`: one per block for a `{layer}` pattern."""
        if "{layer}" not in self.path:
            return [self.path]
        blocks = model.get_submodule(self.path.split(".{layer}")[0])
        return [self.path.format(layer=i) for i in range(len(blocks))]


def _at(pattern: str) -> Callable[[int], str]:
    return lambda layer: pattern.format(layer=layer)


ENCODER_CONV1 = "encoder.conv1"
ENCODER_CONV2 = "encoder.conv2"
ENCODER_OUTPUT = "encoder"
encoder_query = _at("encoder.blocks.{layer}.attn.query")
encoder_key = _at("encoder.blocks.{layer}.attn.key")
cross_query = _at("decoder.blocks.{layer}.cross_attn.query")
cross_key = _at("decoder.blocks.{layer}.cross_attn.key")
cross_value = _at("decoder.blocks.{layer}.cross_attn.value")

CORE = (
    CapturePoint(ENCODER_CONV1, RUN, "conv1 of the stem: its picture and statistics"),
    CapturePoint(ENCODER_CONV2, RUN, "conv2 of the stem, and with the positions, the encoder's input"),
    CapturePoint(ENCODER_OUTPUT, RUN, "audio features: the teacher-forced pass reuses them"),
    CapturePoint("encoder.blocks.{layer}.attn.query", RUN, "queries: every encoder head is rebuilt from them"),
    CapturePoint("encoder.blocks.{layer}.attn.key", RUN, "keys, likewise"),
    CapturePoint("decoder.blocks.{layer}.cross_attn.key", RUN,
                 "cross-attention keys of the audio, computed once per decode and reused"),
    CapturePoint("decoder.blocks.{layer}.cross_attn.value", RUN, "cross-attention values, likewise"),
    CapturePoint("decoder.blocks.{layer}.cross_attn.query", TEACHER_FORCED,
                 "each generated token's cross-attention query: the cross-attention and word timings"),
)

_extra: dict[str, CapturePoint] = {}
_lock = threading.Lock()


def register(point: CapturePoint) -> None:
    """Record one more internal in every later run. It needs `keep`; RUN points under `encoder` only,
    since a decoder module's latest output at a window's start is one decoding step, not the window."""
    if point.keep is None:
        raise ValueError(f"capture point {point.path} needs `keep`, the function that turns its output into data")
    if point.stage != RUN or not point.path.startswith("encoder"):
        raise ValueError(f"capture point {point.path}: only encoder modules can be added for now (stage {RUN!r})")
    if any(p.path == point.path for p in CORE):
        raise ValueError(f"capture point {point.path} is already a core point")
    with _lock:
        _extra[point.path] = point


def unregister(path: str) -> None:
    with _lock:
        _extra.pop(path, None)


def points(stage: str) -> list[CapturePoint]:
    """Every capture point of one stage: the core ones, then the registered ones."""
    with _lock:
        extra = list(_extra.values())
    return [p for p in (*CORE, *extra) if p.stage == stage]


def extras() -> list[CapturePoint]:
    with _lock:
        return list(_extra.values())


def install(hooks, model, stage: str, on_output: Callable[[str, Any], None] | None = None) -> list[CapturePoint]:
    """Hook every point of `stage` on `model`, each found by its module path, its output handed to
    `on_output` (or kept in `hooks` under its name); `hooks` removes them all on exit. Returns the points,
    so a run reads back the very ones it hooked even if the registry changes meanwhile."""
    installed = points(stage)
    for point in installed:
        for name in point.names(model):
            hooks.output(name, model.get_submodule(name), on_output)
    return installed
