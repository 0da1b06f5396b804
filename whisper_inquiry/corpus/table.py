"""A corpus's table: each clip's reference beside what a model wrote, scored, sliced, and written out.

One row per clip joins what the corpus says (`Clip`), what the model made of it (`ClipRun`) and the
score (`Score`); everything else (the corpus WER and its interval, slices, the comparison of two models,
calibration, CSV and NeMo manifest out) is computed from rows, so the app, the CLI and the benchmark
share one definition of each number.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from whisper_inquiry.corpus.read import Clip, Corpus
from whisper_inquiry.corpus.run import ClipRun
from whisper_inquiry.corpus.score import (
    Difference,
    Score,
    calibration,
    corpus_wer,
    normalizer_name,
    paired_difference,
    score,
    wer_interval,
    word_hits,
)

SLICE_BINS = 3  # numeric columns (duration, estimated SNR) are cut into this many bins of equal clip counts


@dataclass(frozen=True)
class Row:
    clip: Clip
    run: ClipRun | None  # None: not run (cancelled before it)
    score: Score | None  # None: no reference, or no hypothesis
    scored_as: str | None = None  # the language whose normaliser scored it, where another row decided it

    @property
    def error(self) -> str | None:
        return self.clip.error or (self.run.error if self.run else None)

    @property
    def language(self) -> str | None:
        """The clip's language as the corpus names it, else as the model heard it: it picks the normaliser."""
        if self.scored_as:
            return self.scored_as
        named = self.clip.columns.get("language")
        return str(named) if named else (self.run.language if self.run else None)

    def to_json(self) -> dict[str, Any]:
        run, s = self.run, self.score
        doc: dict[str, Any] = {
            "audio": self.clip.audio, "reference": self.clip.reference,
            "hypothesis": run.hypothesis if run and not run.error else None,
            "wer": s.wer if s else None, "cer": s.cer if s else None,
            "substitutions": s.substitutions if s else None, "insertions": s.insertions if s else None,
            "deletions": s.deletions if s else None, "reference_words": s.reference_words if s else None,
            "error": self.error,
            "duration": run.duration_s if run and not run.error else self.clip.duration_s,
            "language": self.language, "normalizer": normalizer_name(self.language) if s else None,
        }
        if run and not run.error:
            doc.update(mean_prob=run.mean_prob, min_prob=run.min_prob, compression_ratio=run.compression_ratio,
                       no_speech_prob=run.no_speech_prob, hallucinated=run.hallucinated,
                       hallucination=run.hallucination, fallback_attempts=run.fallback_attempts,
                       snr_db=run.snr_db, key=run.key)
        for name, value in self.clip.columns.items():
            doc.setdefault(name, value)
        return doc


def rows_of(corpus: Corpus, runs: Sequence[ClipRun | None], like: Sequence[Row] | None = None) -> list[Row]:
    """Each clip scored in its language: the corpus's column, else as the model heard it. With `like` (model
    A's rows), each clip keeps A's language, so both models' texts go through the same normaliser and the
    paired comparison counts the same reference words."""
    rows = []
    for i, (clip, run) in enumerate(zip(corpus.clips, runs)):
        row = Row(clip, run, None)
        if run is not None and not run.error and clip.reference is not None:
            language = like[i].language if like is not None and like[i].language else row.language
            row = Row(clip, run, score(clip.reference, run.hypothesis, language), language)
        rows.append(row)
    return rows


def scored(rows: Sequence[Row]) -> list[Score]:
    return [r.score for r in rows if r.score is not None]


@dataclass(frozen=True)
class Summary:
    clips: int
    ran: int
    failed: int
    scored: int
    wer: float | None
    interval: tuple[float, float] | None
    normalizers: tuple[str, ...]  # whisper's normalisers used, by name

    def to_json(self) -> dict[str, Any]:
        return {"clips": self.clips, "ran": self.ran, "failed": self.failed, "scored": self.scored, "wer": self.wer,
                "wer_interval": list(self.interval) if self.interval else None,
                "normalizers": list(self.normalizers)}


def summary(rows: Sequence[Row]) -> Summary:
    scores = scored(rows)
    names = sorted({normalizer_name(r.language) for r in rows if r.score is not None})
    return Summary(len(rows), sum(r.run is not None for r in rows), sum(r.error is not None for r in rows),
                   len(scores), corpus_wer(scores), wer_interval(scores), tuple(names))


def compare(rows_a: Sequence[Row], rows_b: Sequence[Row]) -> Difference | None:
    """B - A on the clips both scored (paired bootstrap)."""
    return paired_difference([(a.score, b.score) for a, b in zip(rows_a, rows_b)
                              if a.score is not None and b.score is not None])


def changed(rows_a: Sequence[Row], rows_b: Sequence[Row]) -> list[tuple[int, float]]:
    """(row index, WER of B - WER of A) for every clip whose WER moved, the largest moves first."""
    moves = [(i, b.score.wer - a.score.wer) for i, (a, b) in enumerate(zip(rows_a, rows_b))
             if a.score and b.score and a.score.wer is not None and b.score.wer is not None
             and abs(b.score.wer - a.score.wer) > 1e-9]
    return sorted(moves, key=lambda m: -abs(m[1]))


# -- slices ------------------------------------------------------------------------------------------------------

def _bins(values: list[float | None], unit: str, n: int = SLICE_BINS) -> list[str | None]:
    """Numbers cut into `n` bins of about equal clip counts, each labelled by its range."""
    known = sorted(v for v in values if v is not None)
    if not known:
        return [None] * len(values)
    edges = np.unique(np.quantile(known, np.linspace(0, 1, n + 1)))
    if len(edges) < 2:
        return [f"{known[0]:.0f} {unit}" if v is not None else None for v in values]
    labels = [f"{lo:.1f}-{hi:.1f} {unit}" for lo, hi in zip(edges[:-1], edges[1:])]
    return [None if v is None else labels[min(int(np.searchsorted(edges[1:-1], v, side="right")), len(labels) - 1)]
            for v in values]


def slice_values(rows: Sequence[Row]) -> dict[str, list[str | None]]:
    """Every column a slice can be taken by, with each row's value: the corpus's own columns, and duration
    and estimated SNR in bins."""
    columns: dict[str, list[str | None]] = {}
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r.clip.columns))
    for name in names:
        values = [r.clip.columns.get(name) for r in rows]
        numeric = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(set(numeric)) > 2 * SLICE_BINS:
            columns[name] = _bins([float(v) if isinstance(v, (int, float)) else None for v in values], "")
        else:
            columns[name] = [None if v is None else str(v) for v in values]
    columns["duration"] = _bins([r.run.duration_s if r.run and not r.run.error else r.clip.duration_s
                                 for r in rows], "s")
    columns["estimated SNR"] = _bins([r.run.snr_db if r.run and not r.run.error else None for r in rows], "dB")
    return columns


@dataclass(frozen=True)
class Slice:
    column: str
    value: str
    clips: int
    words: int
    wer: float | None


def slices(rows: Sequence[Row], column: str, values: list[str | None] | None = None) -> list[Slice]:
    """The corpus WER of each value of `column`, worst first."""
    values = values if values is not None else slice_values(rows)[column]
    groups: dict[str, list[Score]] = {}
    for r, v in zip(rows, values):
        if v is not None and r.score is not None:
            groups.setdefault(v, []).append(r.score)
    found = [Slice(column, v, len(s), sum(x.reference_words for x in s), corpus_wer(s)) for v, s in groups.items()]
    return sorted(found, key=lambda s: -(s.wer or 0))


def calibration_of(rows: Sequence[Row]):
    """Every written word of every scored clip, by probability, against whether it matches the reference."""
    hits = []
    for r in rows:
        if r.score is not None and r.run is not None:
            hits += word_hits(r.clip.reference or "", [(w[0], w[3]) for w in r.run.words], r.language)
    return calibration(hits)


# -- out ---------------------------------------------------------------------------------------------------------

def document(corpus: Corpus, rows: Sequence[Row], model: str, rows_b: Sequence[Row] | None = None,
             model_b: str | None = None) -> dict[str, Any]:
    """The CLI's --json: `rows`, the corpus `wer` and its interval, and with a second model the same under
    `compare`, with the paired difference."""
    doc: dict[str, Any] = {"corpus": corpus.name, "layout": corpus.layout, "model": model,
                           "rows": [r.to_json() for r in rows], **summary(rows).to_json()}
    if corpus.refused:
        doc["refused"] = corpus.refused
    if rows_b is not None:
        diff = compare(rows, rows_b)
        doc["compare"] = {"model": model_b, "rows": [r.to_json() for r in rows_b], **summary(rows_b).to_json(),
                          "difference": diff.difference if diff else None,
                          "difference_interval": list(diff.interval) if diff else None,
                          "verdict": diff.verdict if diff else None}
    return doc


CSV_COLUMNS = ("audio", "reference", "hypothesis", "wer", "cer", "substitutions", "insertions", "deletions",
               "duration", "language", "mean_prob", "min_prob", "compression_ratio", "no_speech_prob",
               "hallucination", "fallback_attempts", "snr_db", "error")


def to_csv(rows: Sequence[Row]) -> str:
    docs = [r.to_json() for r in rows]
    extra = [k for k in dict.fromkeys(k for d in docs for k in d) if k not in CSV_COLUMNS
             and k not in ("key", "hallucinated", "normalizer", "reference_words")]
    out = io.StringIO()
    writer = csv.DictWriter(out, [*CSV_COLUMNS, *extra], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(docs)
    return out.getvalue()


def to_manifest(rows: Sequence[Row]) -> str:
    """NeMo's manifest with `pred_text` (and the error counts), so its Speech Data Explorer reads it."""
    lines = []
    for r in rows:
        doc = {"audio_filepath": r.clip.audio, "text": r.clip.reference or "",
               "pred_text": r.run.hypothesis if r.run and not r.run.error else ""}
        if r.run and not r.run.error:
            doc["duration"] = r.run.duration_s
        elif r.clip.duration_s is not None:
            doc["duration"] = r.clip.duration_s
        if r.score is not None:
            doc.update(wer=r.score.wer, cer=r.score.cer)
        if r.error:
            doc["error"] = r.error
        doc.update({k: v for k, v in r.clip.columns.items() if k not in doc})
        lines.append(json.dumps(doc, ensure_ascii=False))
    return "\n".join(lines) + "\n"
