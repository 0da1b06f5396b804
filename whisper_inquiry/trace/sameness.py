"""How one trace differs from another: what a batched (or served, or drafted) run must share with its
solo run. Tokens, texts, shapes and statuses must be equal; floats are compared apart, so a batched
kernel's rounding shows as a size, not a failure, and `divergences` names the near-ties that flipped."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Sameness:
    """How one trace differs from another: every non-float difference, and the largest float one."""

    differences: list[str] = field(default_factory=list)  # paths whose tokens, texts, shapes or statuses differ
    max_float_diff: float = 0.0
    where: str = ""  # the path of the largest float difference

    @property
    def identical(self) -> bool:
        return not self.differences and self.max_float_diff == 0.0


def compare(a, b, skip: tuple[str, ...] = ("timings_ms",)) -> Sameness:
    """Walk two traces (or any of their parts) field by field: what a batched run must share with its
    solo run. Floats are compared apart, so a batched kernel's rounding shows as a size, not a failure."""
    out = Sameness()
    _walk(a, b, "trace", skip, out)
    return out


def divergences(solo, batched) -> list[str]:
    """Where a batched trace's chosen tokens part from its solo run's, each with the size of the
    near-tie that flipped: the solo run's log-probabilities of both tokens at that step."""
    out = []
    for w, (wa, wb) in enumerate(zip(solo.windows, batched.windows)):
        for k, (ta, tb) in enumerate(zip(wa.attempts, wb.attempts)):
            for i, (sa, sb) in enumerate(zip(ta.steps, tb.steps)):
                if sa.id == sb.id:
                    continue
                other = next((alt.logprob for alt in sa.alternatives if alt.id == sb.id), None)
                gap = f"{sa.logprob - other:.3g}" if other is not None else "more than the top-k"
                out.append(f"window {w} attempt {k} token {i}: alone {sa.text!r} (log p {sa.logprob:.3f}), "
                           f"batched {sb.text!r}; the near-tie alone was {gap}")
                break
    return out


def _walk(a, b, path: str, skip: tuple[str, ...], out: Sameness) -> None:
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        if type(a) is not type(b):
            out.differences.append(f"{path}: {type(a).__name__} vs {type(b).__name__}")
            return
        for f in dataclasses.fields(a):
            if f.name not in skip:
                _walk(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}", skip, out)
    elif isinstance(a, dict):
        if not isinstance(b, dict) or list(a) != list(b):
            out.differences.append(f"{path}: keys differ")
            return
        for k in a:
            _walk(a[k], b[k], f"{path}[{k!r}]", skip, out)
    elif isinstance(a, (list, tuple)):
        if not isinstance(b, (list, tuple)) or len(a) != len(b):
            out.differences.append(f"{path}: length {len(a)} vs {len(b) if isinstance(b, (list, tuple)) else b}")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            _walk(x, y, f"{path}[{i}]", skip, out)
    elif isinstance(a, np.ndarray):
        if not isinstance(b, np.ndarray) or a.shape != b.shape or a.dtype != b.dtype:
            out.differences.append(f"{path}: array {getattr(a, 'shape', a)} vs {getattr(b, 'shape', b)}")
        elif np.issubdtype(a.dtype, np.floating):
            x, y = a.astype(np.float64), b.astype(np.float64)
            if not np.array_equal(np.isnan(x), np.isnan(y)):
                out.differences.append(f"{path}: NaN in other places")
            diff = np.abs(np.nan_to_num(x - y, nan=0.0, posinf=0.0, neginf=0.0))
            _note(float(diff.max(initial=0.0)), path, out)
        elif not np.array_equal(a, b):
            out.differences.append(f"{path}: values differ")
    elif isinstance(a, float) and isinstance(b, float):
        if a != b and not (a != a and b != b):
            _note(abs(a - b) if abs(a - b) == abs(a - b) else float("inf"), path, out)
    elif a != b:
        out.differences.append(f"{path}: {a!r} vs {b!r}")


def _note(diff: float, path: str, out: Sameness) -> None:
    if diff > out.max_float_diff:
        out.max_float_diff, out.where = diff, path
