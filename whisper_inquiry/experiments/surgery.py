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
from dataclasses import dataclass, field

import numpy as np

from whisper_inquiry.errors import OptionsError
from whisper_inquiry.experiments.scoring import (
    Progress,
    Reference,
    decode_batch,
    frame_range,
    padding_states,
    reference,
)


@dataclass(frozen=True)
class Surgery:
    reference: Reference
    start_s: float
    end_s: float
    text: str  # the free decode with the span's encoder states replaced
    removed_words: list[str]  # words of the original that are missing from the new text, in order
    added_words: list[str]  # words the new text has that the original did not
    seconds: float
    # where each removed word stood among the original's words (`words_of(original_text)`): a word said twice
    # and removed once is told apart by its place, never by its spelling
    removed_at: list[int] = field(default_factory=list)
    # each change as (first, end, written): original words [first, end) gave way to `written` (an insertion
    # when first == end), so a page can tell a word replaced inside the span from a change elsewhere
    changes: list[tuple[int, int, list[str]]] = field(default_factory=list)

    @property
    def original_text(self) -> str:
        return self.reference.text

    def to_json(self) -> dict:
        return {"original_text": self.original_text, "text": self.text, "removed_words": self.removed_words,
                "added_words": self.added_words, "span_s": [self.start_s, self.end_s],
                "seconds": round(self.seconds, 3)}


def words_of(text: str) -> list[str]:
    """Words as compared here: lower case, punctuation dropped."""
    return [w for w in re.sub(r"[^\w' ]+", " ", text.lower()).split() if w]


def changed_spans(original: str, new: str) -> list[tuple[int, int, list[str]]]:
    """Where the new text departs from the original, by aligning the two word sequences (case and punctuation
    ignored): (first, end, written) for original words [first, end) replaced by `written`."""
    a, b = words_of(original), words_of(new)
    return [(i1, i2, b[j1:j2]) for op, i1, i2, j1, j2 in
            difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes() if op != "equal"]


def word_changes(original: str, new: str) -> tuple[list[str], list[str], list[int]]:
    """(removed, added, removed_at) words; removed_at holds each removed word's index in `words_of(original)`."""
    a = words_of(original)
    removed, added, at = [], [], []
    for i1, i2, written in changed_spans(original, new):
        removed += a[i1:i2]
        at += range(i1, i2)
        added += written
    return removed, added, at


def align_words(spoken: list[str], original_text: str) -> list[int | None]:
    """For each of `spoken` (the analysis' timed words), its index among `words_of(original_text)`, or None
    where the two transcripts differ: the analysis decodes with timestamps, the surgery's original without."""
    keys = [(words_of(s) or [""])[0] for s in spoken]  # "9:30" is one timed word, two compared words
    out: list[int | None] = [None] * len(spoken)
    for op, i1, i2, j1, _ in difflib.SequenceMatcher(a=keys, b=words_of(original_text), autojunk=False).get_opcodes():
        if op == "equal":
            for k in range(i2 - i1):
                out[i1 + k] = j1 + k
    return out


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
    removed, added, at = word_changes(ref.text, text)
    report(1.0, "done")
    return Surgery(ref, float(start_s), float(end_s), text, removed, added, time.perf_counter() - started, at,
                   changed_spans(ref.text, text))
