"""Hallucination check: per segment, the evidence that Whisper wrote words the audio does not hold.

The run is whisper.transcribe itself, with word timestamps. Its word-anomaly score and segment test
are whisper's own functions (taken from transcribe's code, not rewritten), and its
`hallucination_silence_threshold` skip is whisper's own too: the check re-runs transcribe with the
threshold on and reports which segments it drops. Around that: repeated n-grams, compression ratio,
log-probability, no-speech probability, known phrases (data/hallucination_phrases.txt) and the
alignment heads' cross-attention (read from whisper's own word-timing pass by a hook): how spread out
it is, and whether the words' DTW timings still move forward.
"""

from __future__ import annotations

import importlib
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import whisper
from whisper.audio import log_mel_spectrogram

from whisper_inquiry.experiments.interventions import check_task
from whisper_inquiry.instruments.capture import model_lock
from whisper_inquiry.trace.schema import AUDIO_CTX_S, FRAME_S, SAMPLE_RATE

PHRASES_FILE = Path(__file__).resolve().parents[1] / "data" / "hallucination_phrases.txt"
SILENCE_THRESHOLD_S = 2.0  # what the switch turns on: whisper's hallucination_silence_threshold
_transcribe = importlib.import_module("whisper.transcribe")


def _whisper_function(name: str, **free) -> types.FunctionType:
    """A helper transcribe defines inside itself, rebuilt from its compiled code (so it is whisper's own)."""
    code = next(c for c in _transcribe.transcribe.__code__.co_consts if getattr(c, "co_name", None) == name)
    cells = tuple(types.CellType(free[v]) for v in code.co_freevars)
    return types.FunctionType(code, _transcribe.__dict__, name, None, cells)


word_anomaly_score = _whisper_function("word_anomaly_score")
_PUNCTUATION = "\"'“¿([{-\"'.。,，!！?？:：”)]}、"  # transcribe's local `punctuation`
is_segment_anomaly = _whisper_function("is_segment_anomaly", punctuation=_PUNCTUATION,
                                       word_anomaly_score=word_anomaly_score)


def known_phrases() -> list[str]:
    lines = PHRASES_FILE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _norm(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace() or c == ".").split()).strip(".")


@dataclass(frozen=True)
class Evidence:
    kind: str  # repeat, compression, logprob, no_speech, anomaly, silence_skip, phrase, attention, duplicate,
    # beyond_end
    message: str
    strong: bool  # one strong piece flags the segment; weak ones need company


@dataclass(frozen=True)
class SegmentCheck:
    start_s: float
    end_s: float
    text: str
    likely_hallucinated: bool
    verdict: str
    evidence: tuple[Evidence, ...]
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    anomaly_score: float  # whisper's word-anomaly score summed over the first 8 words, as transcribe does
    attention_entropy: float  # alignment heads, mean over tokens, 0 (one frame) to 1 (spread evenly)
    attention_stopped_s: float | None
    words: tuple[tuple[str, float, float, float], ...]  # (word, start_s, end_s, probability)
    token_peaks: tuple[tuple[float, float], ...]  # per text token: (attention peak in s, entropy 0..1)


@dataclass(frozen=True)
class HallucinationResult:
    likely_hallucinated: bool
    text: str
    segments: tuple[SegmentCheck, ...]
    duration_s: float
    mel: np.ndarray  # (n_mels, n_columns) float16 log-mel for drawing
    mel_column_s: float  # seconds per mel column
    silence_threshold_s: float | None
    rerun_text: str | None  # with whisper's hallucination_silence_threshold on
    dropped_by_rerun: tuple[str, ...]  # segment texts the rerun no longer writes

    def to_json(self) -> dict:
        return {"likely_hallucinated": self.likely_hallucinated, "segments": [
            {"start_s": round(s.start_s, 2), "end_s": round(s.end_s, 2), "text": s.text,
             "likely_hallucinated": s.likely_hallucinated, "evidence": [e.message for e in s.evidence]}
            for s in self.segments]}


def longest_repeat(tokens: list[int], max_n: int = 8) -> tuple[int, int, int]:
    """(n, repeats, start) of the n-gram repeated most often back to back, counted in tokens covered."""
    best = (0, 0, 0)
    for n in range(1, max_n + 1):
        for i in range(0, max(0, len(tokens) - 2 * n + 1)):
            gram, r = tokens[i:i + n], 1
            while tokens[i + r * n:i + (r + 1) * n] == gram:
                r += 1
            if r > 1 and r * n > best[0] * best[1]:
                best = (n, r, i)
    return best


class _AlignmentTap:
    """Keeps the cross-attention scores of whisper's word-timing pass (the only decoder call run with
    SDPA off, so the only one whose attention modules return their scores), keyed by its tokens."""

    def __init__(self, model):
        self.model = model
        self.pending: list[torch.Tensor | None] = [None] * len(model.decoder.blocks)
        self.calls: list[tuple[list[int], torch.Tensor]] = []

    def __enter__(self):
        blocks = self.model.decoder.blocks
        self.handles = [b.cross_attn.register_forward_hook(self._cross(i)) for i, b in enumerate(blocks)]
        self.handles.append(self.model.decoder.register_forward_hook(self._decoder))
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()

    def _cross(self, i):
        def hook(_m, _i, output):
            self.pending[i] = output[1][0].float() if output[1] is not None else None  # (n_head, n_tok, n_ctx)
        return hook

    def _decoder(self, _m, inputs, _output):
        if all(p is not None for p in self.pending) and inputs[0].shape[0] == 1:
            self.calls.append((inputs[0][0].tolist(), torch.stack(self.pending)))
        self.pending = [None] * len(self.pending)


def _transcribe_run(model, samples, task, language, threshold, gate):
    kwargs = dict(task=task, language=language if model.is_multilingual else "en", word_timestamps=True,
                  fp16=model.device.type == "cuda", verbose=None, hallucination_silence_threshold=threshold)
    if not gate:
        kwargs["no_speech_threshold"] = None
    with model_lock(model), _AlignmentTap(model) as tap:
        result = whisper.transcribe(model, samples, **kwargs)
    return result, tap.calls


def _attention(model, segments: list[dict], calls, eot: int, sot_len: int) -> list[list[tuple[float, float]]]:
    """Per segment, per text token: alignment heads' attention peak (s) and normalised entropy."""
    heads = model.alignment_heads.to_dense().nonzero().tolist()
    out: list[list[tuple[float, float]]] = [[] for _ in segments]
    by_seek: dict[int, list[int]] = {}
    for i, s in enumerate(segments):
        by_seek.setdefault(s["seek"], []).append(i)
    for seek, ids in by_seek.items():
        per_segment = [[t for t in segments[i]["tokens"] if t < eot] for i in ids]
        text = [t for toks in per_segment for t in toks]
        match = next((qk for toks, qk in calls if toks[sot_len + 1:-1] == text), None)
        if match is None or not text:
            continue
        n_audio = match.shape[-1]
        weights = torch.stack([match[layer, head] for layer, head in heads]).softmax(-1).mean(0)  # (n_tok, n_ctx)
        rows = weights[sot_len:sot_len + len(text)]
        entropy = -(rows * rows.clamp_min(1e-12).log()).sum(-1) / np.log(n_audio)
        peaks = rows.argmax(-1).numpy() * AUDIO_CTX_S + seek * FRAME_S
        k = 0
        for i, toks in zip(ids, per_segment):
            out[i] = [(float(peaks[k + j]), float(entropy[k + j])) for j in range(len(toks))]
            k += len(toks)
    return out


def _stopped_at(words: list[dict]) -> float | None:
    """Where the DTW timings stop moving: the earliest start of a run of >= 3 final words squeezed into
    under 0.15 s each (speech runs near 0.3 s a word)."""
    for i in range(max(0, len(words) - 3) + 1):
        tail = words[i:]
        if len(tail) >= 3 and tail[-1]["end"] - tail[0]["start"] < 0.15 * len(tail):
            return float(tail[0]["start"])
    return None


def _evidence(seg: dict, prev: dict | None, peaks, phrases: list[str], dropped: bool, eot: int,
              duration_s: float) -> list[Evidence]:
    ev = []
    if seg["end"] > duration_s + 0.5:
        ev.append(Evidence("beyond_end", f"timed {seg['start']:.1f}-{seg['end']:.1f} s, but the audio ends at "
                           f"{duration_s:.1f} s", True))
    tokens = [t for t in seg["tokens"] if t < eot]  # text tokens (every special token comes after them)
    n, r, _ = longest_repeat(tokens)
    if (n == 1 and r >= 4) or (n > 1 and r >= 3):
        ev.append(Evidence("repeat", f"the same {n}-token phrase repeats {r} times in a row ({n * r} tokens)", True))
    if seg["compression_ratio"] > 2.4:
        ev.append(Evidence("compression", f"text compresses {seg['compression_ratio']:.1f}x (whisper's limit 2.4): "
                           "repetitive", True))
    if seg["avg_logprob"] < -1.0:
        ev.append(Evidence("logprob", f"low confidence: average log-probability {seg['avg_logprob']:.2f} < -1", False))
    if seg["no_speech_prob"] > 0.6:
        ev.append(Evidence("no_speech", f"the model itself gave no-speech probability {seg['no_speech_prob']:.2f}",
                           False))
    if is_segment_anomaly(seg):
        ev.append(Evidence("anomaly", "whisper's word-anomaly test fires: words too short, too long or improbable",
                           True))
    if dropped:
        ev.append(Evidence("silence_skip", "whisper's hallucination_silence_threshold run drops this segment", True))
    norm = _norm(seg["text"])
    for phrase in phrases:
        if norm == _norm(phrase) or (len(phrase.split()) > 2 and _norm(phrase) in norm):
            ev.append(Evidence("phrase", f"a phrase Whisper is known to invent: \"{phrase}\"", True))
            break
    if prev is not None and _norm(prev["text"]) == norm and norm:
        ev.append(Evidence("duplicate", "the same text as the previous segment", True))
    stopped = _stopped_at(seg.get("words", []))
    if stopped is not None:
        ev.append(Evidence("attention", f"attention stopped moving at {stopped:.1f} s: the last words are squeezed "
                           "into almost no time", True))
    if peaks and np.mean([e for _, e in peaks]) > 0.75:
        ev.append(Evidence("attention", f"the alignment heads' attention is spread out (entropy "
                           f"{np.mean([e for _, e in peaks]):.2f} of the maximum): they find nothing to read", False))
    return ev


def _verdict(ev: list[Evidence]) -> tuple[bool, str]:
    strong = [e for e in ev if e.strong]
    weak = [e for e in ev if not e.strong]
    if strong or len(weak) >= 2:
        return True, "likely hallucinated: " + "; ".join(e.message for e in (strong or weak)[:2])
    if weak:
        return False, "probably real, one doubt: " + weak[0].message
    return False, "looks like real speech: no warning sign"


def check_hallucination(model, samples: np.ndarray, task: str = "transcribe", language: str | None = None,
                        silence_threshold_s: float | None = None, no_speech_gate: bool = True) -> HallucinationResult:
    """Transcribe as whisper does (word timestamps on) and weigh each segment's evidence; with
    `silence_threshold_s`, re-run with whisper's hallucination_silence_threshold and report what it drops.

    `no_speech_gate=False` turns off transcribe's no-speech skip (`no_speech_threshold=None`), as many
    deployments run it: the decoder's text over non-speech is then kept, and this check has to catch it."""
    check_task(model, task)
    result, calls = _transcribe_run(model, samples, task, language, None, no_speech_gate)
    segments = result["segments"]
    rerun_text, dropped = None, set()
    if silence_threshold_s is not None:
        rerun, _ = _transcribe_run(model, samples, task, language, silence_threshold_s, no_speech_gate)
        rerun_text = rerun["text"].strip()
        kept = {_norm(s["text"]) for s in rerun["segments"]}
        dropped = {i for i, s in enumerate(segments) if _norm(s["text"]) not in kept}
    tokenizer = whisper.tokenizer.get_tokenizer(model.is_multilingual, num_languages=model.num_languages,
                                               language=result.get("language"), task=task)
    peaks = _attention(model, segments, calls, tokenizer.eot, len(tokenizer.sot_sequence))
    phrases = known_phrases()
    checks = []
    for i, seg in enumerate(segments):
        ev = _evidence(seg, segments[i - 1] if i else None, peaks[i], phrases, i in dropped, tokenizer.eot,
                       len(samples) / SAMPLE_RATE)
        flagged, verdict = _verdict(ev)
        words = [w for w in seg.get("words", []) if w["word"] not in _PUNCTUATION][:8]
        checks.append(SegmentCheck(
            float(seg["start"]), float(seg["end"]), seg["text"].strip(), flagged, verdict, tuple(ev),
            float(seg["avg_logprob"]), float(seg["compression_ratio"]), float(seg["no_speech_prob"]),
            float(sum(word_anomaly_score(w) for w in words)),
            float(np.mean([e for _, e in peaks[i]])) if peaks[i] else float("nan"), _stopped_at(seg.get("words", [])),
            tuple((w["word"], float(w["start"]), float(w["end"]), float(w["probability"]))
                  for w in seg.get("words", [])),
            tuple(peaks[i]),
        ))
    mel = log_mel_spectrogram(samples, model.dims.n_mels).numpy()  # (n_mels, n_frames)
    pool = max(1, int(np.ceil(mel.shape[1] / 1500)))
    cols = mel.shape[1] // pool
    pooled = mel[:, : cols * pool].reshape(mel.shape[0], cols, pool).mean(-1) if cols else mel
    return HallucinationResult(
        likely_hallucinated=any(c.likely_hallucinated for c in checks), text=result["text"].strip(),
        segments=tuple(checks), duration_s=len(samples) / SAMPLE_RATE, mel=pooled.astype(np.float16),
        mel_column_s=pool * FRAME_S, silence_threshold_s=silence_threshold_s, rerun_text=rerun_text,
        dropped_by_rerun=tuple(segments[i]["text"].strip() for i in sorted(dropped)),
    )


SPEECH_AFTER_S = 35.0  # silence before speech in the presets: the first 30 s window holds none


def preset_audio(name: str, seed: int = 0) -> tuple[np.ndarray, str]:
    """Audio that makes Whisper write what is not there, made offline: (samples, task). Names in PRESETS.

    Noise and silence alone: with whisper's no-speech skip on, tiny.en writes nothing for them; turn the
    skip off (as the page does for presets) to see what the decoder writes. Before speech, a first window
    of silence alone: tiny.en writes " you" into it with whisper's defaults, and so does base when it
    translates the Spanish sample that follows (measured here); the speech itself comes out right, so
    the check must flag the silence and nothing else. Translating the Spanish sample on its own, base is
    faithful: no invented text to show."""
    from whisper_inquiry.audio.load import load_audio
    from whisper_inquiry.audio.samples import sample_named

    rng = np.random.default_rng(seed)
    sr = SAMPLE_RATE
    silence = np.zeros(int(SPEECH_AFTER_S * sr), np.float32)
    if name == "pure noise":
        return (rng.normal(0, 0.1, 10 * sr)).astype(np.float32), "transcribe"
    if name == "long silence":
        return (rng.normal(0, 1e-4, 20 * sr)).astype(np.float32), "transcribe"
    if name == "silence before speech":
        return np.concatenate([silence, load_audio(sample_named("english_weather").path).samples]), "transcribe"
    if name == "translating Spanish after silence (base)":
        return np.concatenate([silence, load_audio(sample_named("spanish").path).samples]), "translate"
    raise KeyError(name)


PRESETS = ("pure noise", "long silence", "silence before speech", "translating Spanish after silence (base)")


def trace_verdict(trace) -> tuple[bool, str]:
    """The check's verdict on a finished trace, with what the trace holds: each segment's repeats,
    compression, confidence, no-speech probability, whisper's word-anomaly test on its timed words, known
    phrases and duplicates (no re-run, and no attention spread: a corpus's table gets this for free). The
    worst segment's verdict, or that nothing was written."""
    import whisper.tokenizer

    multilingual = trace.model.multilingual
    eot = whisper.tokenizer.get_tokenizer(
        multilingual, num_languages=trace.model.dims["n_vocab"] - 51765 - int(multilingual)).eot
    words = trace.words
    phrases = known_phrases()
    verdicts, prev = [], None
    for s in trace.segments:
        seg = {"start": s.start_s, "end": s.end_s, "text": s.text, "tokens": s.tokens,
               "compression_ratio": s.compression_ratio, "avg_logprob": s.avg_logprob,
               "no_speech_prob": s.no_speech_prob,
               "words": [{"word": w.word, "start": w.start_s, "end": w.end_s, "probability": w.prob}
                         for w in words if s.start_s - 0.01 <= w.start_s <= s.end_s + 0.01]}
        verdicts.append(_verdict(_evidence(seg, prev, [], phrases, False, eot, trace.duration_s)))
        prev = seg
    if not verdicts:
        return False, "nothing written"
    return max(verdicts, key=lambda v: (v[0], not v[1].startswith("looks")))
