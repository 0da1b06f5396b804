"""Error rates, word alignments and honest intervals for a corpus, with the field's own tools.

Text is made comparable by openai-whisper's own normalisers (`EnglishTextNormalizer` for English, which
also writes "nine thirty" as "930"; `BasicTextNormalizer` for every other language), then jiwer aligns
the words and counts substitutions, insertions and deletions. The corpus WER is jiwer's: every clip's
errors over every clip's reference words (word-weighted), so long clips weigh more. Intervals come from
the bootstrap over clips (resampling whole clips, since a clip's words are not independent); two models
are compared on the same resampled clips (a paired bootstrap), so a user sees whether B is really better.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import jiwer
import numpy as np

BOOTSTRAP_SAMPLES = 1000
CALIBRATION_BINS = 10


@cache
def _normalizers() -> tuple[Callable[[str], str], Callable[[str], str]]:
    from whisper.normalizers import BasicTextNormalizer, EnglishTextNormalizer

    return EnglishTextNormalizer(), BasicTextNormalizer()


def normalizer_name(language: str | None) -> str:
    return "EnglishTextNormalizer" if language in (None, "en") else "BasicTextNormalizer"


def normalize(text: str, language: str | None) -> str:
    """whisper's normaliser for this language (None: English), with runs of spaces folded."""
    english, basic = _normalizers()
    return " ".join((english if language in (None, "en") else basic)(text).split())


@dataclass(frozen=True)
class Alignment:
    """One step of the word alignment: "equal", "substitute", "insert" or "delete", and the words on each side."""

    kind: str
    reference: str  # "" for an insertion
    hypothesis: str  # "" for a deletion


@dataclass(frozen=True)
class Score:
    """One clip's reference against its hypothesis, both normalised."""

    reference: str  # normalised
    hypothesis: str  # normalised
    wer: float | None  # None where the reference has no words (every written word is then an insertion)
    cer: float | None
    hits: int
    substitutions: int
    insertions: int
    deletions: int
    alignment: tuple[Alignment, ...]

    @property
    def errors(self) -> int:
        return self.substitutions + self.insertions + self.deletions

    @property
    def reference_words(self) -> int:
        return self.hits + self.substitutions + self.deletions


def _chunks(out: jiwer.WordOutput) -> list[Alignment]:
    ref, hyp = out.references[0], out.hypotheses[0]
    steps = []
    for c in out.alignments[0]:
        if c.type in ("equal", "substitute"):
            steps += [Alignment(c.type, r, h) for r, h in zip(ref[c.ref_start_idx:c.ref_end_idx],
                                                              hyp[c.hyp_start_idx:c.hyp_end_idx])]
        elif c.type == "delete":
            steps += [Alignment("delete", r, "") for r in ref[c.ref_start_idx:c.ref_end_idx]]
        else:
            steps += [Alignment("insert", "", h) for h in hyp[c.hyp_start_idx:c.hyp_end_idx]]
    return steps


def score(reference: str, hypothesis: str, language: str | None = None) -> Score:
    """Normalise both sides with whisper's normaliser for `language`, then align them with jiwer."""
    ref, hyp = normalize(reference, language), normalize(hypothesis, language)
    if not ref:
        inserted = hyp.split()
        return Score(ref, hyp, None, None, 0, 0, len(inserted), 0, tuple(Alignment("insert", "", h) for h in inserted))
    if not hyp:  # jiwer refuses an empty hypothesis as it does an empty reference: every word is deleted
        dropped = ref.split()
        return Score(ref, hyp, 1.0, 1.0, 0, 0, 0, len(dropped), tuple(Alignment("delete", r, "") for r in dropped))
    out = jiwer.process_words(ref, hyp)
    return Score(ref, hyp, float(out.wer), float(jiwer.cer(ref, hyp)), out.hits, out.substitutions, out.insertions,
                 out.deletions, tuple(_chunks(out)))


def corpus_wer(scores: Sequence[Score]) -> float | None:
    """Every clip's errors over every clip's reference words: jiwer's WER of the corpus as one list."""
    words = sum(s.reference_words for s in scores)
    return sum(s.errors for s in scores) / words if words else None


def _resampled(n: int, seed: int) -> np.ndarray:
    """(BOOTSTRAP_SAMPLES, n) clip indices drawn with replacement, the same for the same n and seed."""
    return np.random.default_rng(seed).integers(0, n, size=(BOOTSTRAP_SAMPLES, n))


def _ratios(errors: np.ndarray, words: np.ndarray, picks: np.ndarray) -> np.ndarray:
    totals = words[picks].sum(1)
    return np.where(totals > 0, errors[picks].sum(1) / np.maximum(totals, 1), np.nan)


def wer_interval(scores: Sequence[Score], seed: int = 0) -> tuple[float, float] | None:
    """A 95 % bootstrap interval of the corpus WER, resampling clips."""
    if not scores or not sum(s.reference_words for s in scores):
        return None
    errors = np.array([s.errors for s in scores], float)
    words = np.array([s.reference_words for s in scores], float)
    wers = _ratios(errors, words, _resampled(len(scores), seed))
    lo, hi = np.nanpercentile(wers, [2.5, 97.5])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Difference:
    """Model B's corpus WER minus model A's on the same clips, with a paired 95 % bootstrap interval."""

    clips: int
    wer_a: float
    wer_b: float
    difference: float  # B - A: negative means B makes fewer errors
    interval: tuple[float, float]

    @property
    def verdict(self) -> str:
        lo, hi = self.interval
        if hi < 0:
            return "B is better: the whole interval is below zero"
        if lo > 0:
            return "B is worse: the whole interval is above zero"
        return "no clear difference: the interval includes zero"


def paired_difference(pairs: Sequence[tuple[Score, Score]], seed: int = 0) -> Difference | None:
    """B - A over clips that both models ran, each bootstrap sample the same clips for both."""
    pairs = [(a, b) for a, b in pairs if a.reference_words]
    if not pairs:
        return None
    ea, eb = (np.array([p[i].errors for p in pairs], float) for i in (0, 1))
    words = np.array([a.reference_words for a, _ in pairs], float)
    picks = _resampled(len(pairs), seed)
    diffs = _ratios(eb, words, picks) - _ratios(ea, words, picks)
    lo, hi = np.nanpercentile(diffs, [2.5, 97.5])
    wer_a, wer_b = ea.sum() / words.sum(), eb.sum() / words.sum()
    return Difference(len(pairs), float(wer_a), float(wer_b), float(wer_b - wer_a), (float(lo), float(hi)))


def substitution_pairs(scores: Sequence[Score], top: int = 15) -> list[tuple[str, str, int]]:
    """The most frequent (said, written) word pairs across the corpus."""
    counts = Counter((a.reference, a.hypothesis) for s in scores for a in s.alignment if a.kind == "substitute")
    return [(r, h, n) for (r, h), n in counts.most_common(top)]


# -- is confidence honest? -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Calibration:
    """Words binned by the model's probability against the share of them that match the reference."""

    edges: np.ndarray  # (n_bins + 1,) probability edges
    words: np.ndarray  # (n_bins,) int: words in each bin
    confidence: np.ndarray  # (n_bins,) mean probability in each bin (nan where empty)
    accuracy: np.ndarray  # (n_bins,) share of the bin's words that match the reference (nan where empty)
    ece: float  # expected calibration error: the words-weighted mean gap between the two

    @property
    def total(self) -> int:
        return int(self.words.sum())


def word_hits(reference: str, words: Sequence[tuple[str, float]], language: str | None) -> list[tuple[float, bool]]:
    """(probability, matched the reference) for every normalised word the model wrote. Each written word is
    normalised alone and keeps its probability for every word it becomes, then aligned against the
    reference: a word is right when the alignment calls it equal."""
    probs, hyp = [], []
    for word, prob in words:
        for w in normalize(word, language).split():
            hyp.append(w)
            probs.append(float(prob))
    ref = normalize(reference, language)
    if not hyp:
        return []
    if not ref:
        return [(p, False) for p in probs]
    out = jiwer.process_words(ref, " ".join(hyp))
    right = [False] * len(hyp)
    for c in out.alignments[0]:
        if c.type == "equal":
            right[c.hyp_start_idx:c.hyp_end_idx] = [True] * (c.hyp_end_idx - c.hyp_start_idx)
    return list(zip(probs, right))


def calibration(hits: Sequence[tuple[float, bool]], bins: int = CALIBRATION_BINS) -> Calibration:
    """Equal-width probability bins, and the expected calibration error over them."""
    edges = np.linspace(0, 1, bins + 1)
    p = np.array([h[0] for h in hits], float)
    ok = np.array([h[1] for h in hits], float)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1) if len(p) else np.array([], int)
    count = np.bincount(which, minlength=bins).astype(int)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, weights=p, minlength=bins) / count
        accuracy = np.bincount(which, weights=ok, minlength=bins) / count
    gaps = np.where(count > 0, np.abs(np.nan_to_num(accuracy) - np.nan_to_num(confidence)), 0.0)
    ece = float((count * gaps).sum() / count.sum()) if count.sum() else float("nan")
    return Calibration(edges, count, confidence, accuracy, ece)
