"""Encoder-span surgery: replace the encoder's states of one time span with padding, decode, see what vanishes.

The decoder only ever reads the encoder's 1500 states (20 ms each). Overwrite those of a span with
the states the encoder writes for silence and decode freely: on tiny, replacing frames 150-175
(3.0-3.5 s) deletes exactly the words spoken there (er537, 2023). Nothing else about the audio or the
decoding changes, so whatever text disappears was read from that span and nowhere else.
"""

from __future__ import annotations

import difflib
import re
import time
from dataclasses import dataclass

import numpy as np

from ..errors import OptionsError
from .common import Progress, Reference, decode_batch, frame_range, padding_states, reference


@dataclass(frozen=True)
class Surgery:
    reference: Reference
    start_s: float
    end_s: float
    text: str  # the free decode with the span's encoder states replaced
    removed_words: list[str]  # words of the original that are missing from the new text, in order
    added_words: list[str]  # words the new text has that the original did not
    seconds: float

    @property
    def original_text(self) -> str:
        return self.reference.text

    def to_json(self) -> dict:
        return {"original_text": self.original_text, "text": self.text, "removed_words": self.removed_words,
                "added_words": self.added_words, "span_s": [self.start_s, self.end_s],
                "seconds": round(self.seconds, 3)}


def _words(text: str) -> list[str]:
    return [w for w in re.sub(r"[^\w' ]+", " ", text.lower()).split() if w]


def word_changes(original: str, new: str) -> tuple[list[str], list[str]]:
    """(removed, added) words, by aligning the two word sequences (case and punctuation ignored)."""
    a, b = _words(original), _words(new)
    removed, added = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op in ("delete", "replace"):
            removed += a[i1:i2]
        if op in ("insert", "replace"):
            added += b[j1:j2]
    return removed, added


def operate(model, samples: np.ndarray, start_s: float, end_s: float, language: str | None = None,
            on_progress: Progress | None = None) -> Surgery:
    """Decode the clip with the encoder states of [start_s, end_s) replaced by padding states."""
    if not (np.isfinite(start_s) and np.isfinite(end_s)) or start_s < 0 or end_s < start_s:
        raise OptionsError(f"the span must run forwards from 0 s or later, not {start_s:g} to {end_s:g} s")
    if start_s > 30:
        raise OptionsError(f"the span starts at {start_s:g} s, past the 30 s the encoder sees")
    report = on_progress or (lambda fraction, message: None)
    started = time.perf_counter()
    report(0.0, "decoding the original clip")
    ref, features = reference(model, samples, language)
    report(0.5, f"decoding with {start_s:.2f}-{end_s:.2f} s replaced by padding states")
    span = frame_range(start_s, min(end_s, 30.0))
    operated = features.clone()  # (1, 1500, n_state)
    operated[0, span] = padding_states(model)[span]
    text = decode_batch(model, operated, ref.language)[0].text.strip()
    removed, added = word_changes(ref.text, text)
    report(1.0, "done")
    return Surgery(ref, float(start_s), float(end_s), text, removed, added, time.perf_counter() - started)
