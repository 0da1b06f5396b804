"""`analyze(model, audio, options) -> Trace`: whisper.transcribe, run once, with everything recorded.

The decoding is openai-whisper's own: `whisper.transcribe` cuts the windows and falls back to higher
temperatures, `DecodingTask` decodes. transcribe is handed a per-request stand-in for the model whose
`decode` and `detect_language` submit each window to a worker (`worker.py`: the engine's, which
decodes windows of many requests together, or the caller's own thread) that builds the very same
`DecodingTask` with its decoder and ranker recorded. Each window's start is found by matching its frames
in the run's log-mel. Nothing global is swapped, so the tokens are the ones whisper.transcribe produces,
token for token, however many requests run at once.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import whisper
from whisper.audio import N_FRAMES, N_SAMPLES, log_mel_spectrogram
from whisper.tokenizer import LANGUAGES

from whisper_inquiry.audio.load import SAMPLE_RATE, Audio, load_audio
from whisper_inquiry.engine.lockstep import Decoded, DecodeJob, run_alone
from whisper_inquiry.instruments import points
from whisper_inquiry.instruments.alignment import teacher_forced, word_timings
from whisper_inquiry.instruments.attention import activation, content_positions, encoder_attention, tensor_stats
from whisper_inquiry.instruments.search import build_tree
from whisper_inquiry.instruments.tokens import describe_prompt, token_steps
from whisper_inquiry.models.load import model_info
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.trace.schema import (
    AUDIO_CTX_S,
    FRAME_S,
    TRACE_VERSION,
    Activation,
    Attempt,
    EncoderAttention,
    LanguageGuess,
    Segment,
    Stats,
    Trace,
    Window,
)


@dataclass
class _WindowRecord:
    """One window while the run is still deciding it: what the encoder saw and every attempt so far."""

    index: int
    start_s: float
    content_frames: int  # log-mel frames of audio; the rest of the 3000 is padding
    mel: np.ndarray  # (n_mels, 3000) float32
    mel_stats: Stats
    conv1: Activation
    conv2: Activation
    encoder_input: Activation
    encoder: EncoderAttention
    features: torch.Tensor  # (1, n_ctx, n_state) the encoder's output, reused by the teacher-forced pass
    captured: dict[str, np.ndarray]  # registered capture points, by module path
    attempts: list[Attempt] = field(default_factory=list)


class _Recorder:
    """State of one run: the windows seen so far and the time spent on instrumentation.

    It also answers what `whisper.transcribe` asks of the model (`_RequestModel` hands it `decode` and
    `detect_language`): each decode becomes a `DecodeJob` for `submit` (the engine's worker, or run at
    once by `batching.run_alone`), so nothing of the shared model or of whisper's modules is swapped."""

    def __init__(self, model, options: AnalysisOptions, samples: np.ndarray,
                 submit: Callable[[DecodeJob], object], on_progress: Callable[[str], None] | None = None,
                 cancelled: threading.Event | None = None):
        self.model = model
        self.options = options
        self.submit = submit
        self.cancelled = cancelled
        self.on_progress = on_progress or (lambda message: None)
        self.windows: list[_WindowRecord] = []
        self.language_probs: dict[str, float] | None = None
        self.timings: dict[str, float] = defaultdict(float)
        # the log-mel whisper.transcribe slices its windows from (the same call), to learn each window's seek
        self.mel = log_mel_spectrogram(samples, model.dims.n_mels, padding=N_SAMPLES)
        self.content_frames = self.mel.shape[-1] - N_FRAMES
        self._segment: torch.Tensor | None = None  # the window being decided; held, so its id is not reused
        self._next_seek = 0

    # -- what whisper.transcribe calls ----------------------------------------------------------
    def detect_language(self, mel, tokenizer=None):
        tokens, probs = self.submit(DecodeJob(mel, None, kind="detect", cancelled=self.cancelled))
        if self.language_probs is None:
            self.language_probs = probs[0] if isinstance(probs, list) else probs
        return tokens, probs

    def decode(self, mel: torch.Tensor, options):
        """Stands in for `model.decode`: the same `DecodingTask`, run by the worker with its decoder and
        ranker recorded. A window's later attempts (fallback) reuse its encoder output."""
        features, on_encoded = None, None
        if mel is not self._segment:
            self._segment = mel
            seek, size = self._locate(mel)
            self.on_progress(f"window {len(self.windows) + 1}: {seek / 100:.1f} to {(seek + size) / 100:.1f} s")

            def on_encoded(captured: dict, out: torch.Tensor) -> None:
                self._start_window(mel, seek, size, captured, out)
        else:
            features = self.windows[-1].features
        self.on_progress(f"decoding at temperature {options.temperature:.1f}")
        # sampled attempts draw from a stream of their own, fixed by the window and the temperature
        # (and the options' seed where there is one), so they are the same alone or batched
        window = len(self.windows) - (0 if on_encoded else 1)
        seed = (getattr(self.options, "seed", None) or 0) * 1_000_003 + window * 1009 + round(options.temperature * 100)
        job = DecodeJob(mel if mel.ndim == 2 else mel[0], options, self.options.top_k, features, on_encoded,
                        self._forced, seed=seed, cancelled=self.cancelled)
        return self._attempt(*self.submit(job))

    def _locate(self, segment: torch.Tensor) -> tuple[int, int]:
        """(seek, content frames) of a window: where in the run's log-mel its frames come from. The first
        match after the previous window's start wins (digital silence matches in many places, each
        holding the very same frames)."""
        seg = segment.detach().cpu()
        mel = self.mel.to(seg.dtype)
        same_first = (mel[:, self._next_seek: self.content_frames] == seg[:, :1]).all(0)
        for seek in (same_first.nonzero()[:, 0] + self._next_seek).tolist():
            size = min(N_FRAMES, self.content_frames - seek)
            if torch.equal(mel[:, seek: seek + size], seg[:, :size]) and not seg[:, size:].any():
                self._next_seek = seek + 1
                return seek, size
        raise RuntimeError("a window's frames are not in the run's log-mel")  # whisper changed its slicing

    # -- what each decode leaves behind (in the worker, which holds the model) ------------------------
    def _start_window(self, mel: torch.Tensor, seek: int, size: int, enc: dict, features: torch.Tensor) -> None:
        n = self.model.dims.n_audio_layer
        pos = self.model.encoder.positional_embedding
        conv2 = F.gelu(enc[points.ENCODER_CONV2][0].float())
        t = time.perf_counter()
        attention = encoder_attention(
            [enc[points.encoder_query(i)][0] for i in range(n)], [enc[points.encoder_key(i)][0] for i in range(n)],
            self.model.dims.n_audio_head, self.options.qk_budget_mb, content_positions(size * FRAME_S),
        )
        self.timings["encoder attention"] += time.perf_counter() - t
        captured = {name: np.asarray(point.keep(enc[name]))
                    for point in points.extras() for name in point.names(self.model) if name in enc}
        self.windows.append(_WindowRecord(
            index=len(self.windows), start_s=seek * FRAME_S, content_frames=size,
            mel=mel.float().cpu().numpy(), mel_stats=tensor_stats(mel),
            conv1=activation("conv1", F.gelu(enc[points.ENCODER_CONV1][0].float()), FRAME_S),
            conv2=activation("conv2", conv2, AUDIO_CTX_S),
            encoder_input=activation("encoder input", (conv2.T + pos.float()).T, AUDIO_CTX_S),
            encoder=attention, features=features, captured=captured,
        ))

    def _forced(self, d: Decoded) -> tuple:
        """In the worker, which owns the model: the steps and the teacher-forced pass (cross-attention,
        the residual stream). What needs no model is left to the request's own thread (`_attempt`)."""
        t = time.perf_counter()
        steps = token_steps(d.decoder, d.result.tokens, d.tokenizer, self.options.top_k)
        self.timings["search tree and tokens"] += time.perf_counter() - t
        t = time.perf_counter()
        forced = teacher_forced(self.model, self.windows[-1].features[:1], d.cross_kv,
                                d.decoder.prompt + [s.id for s in steps], d.sample_begin, self.options.cross_budget_mb)
        self.timings["cross-attention and words"] += time.perf_counter() - t
        return d, steps, forced

    def _attempt(self, d: Decoded, steps: list, forced: tuple):
        tokenizer, decoder, result = d.tokenizer, d.decoder, d.result
        t = time.perf_counter()
        # whisper samples at any temperature above zero, whatever was asked for at zero (its fallback)
        strategy = "sampling" if result.temperature > 0 else self.options.strategy
        tree = build_tree(decoder, d.ranker, result.tokens, strategy, tokenizer.decode_with_timestamps)
        self.timings["search tree and tokens"] += time.perf_counter() - t
        window = self.windows[-1]
        t = time.perf_counter()
        cross, scores, residuals = forced
        words, path = word_timings(scores, cross.alignment_heads, [s.id for s in steps], [s.prob for s in steps],
                                   tokenizer, window.content_frames, window.start_s)
        self.timings["cross-attention and words"] += time.perf_counter() - t
        window.attempts.append(Attempt(
            temperature=float(result.temperature), text=result.text, tokens=list(result.tokens),
            avg_logprob=float(result.avg_logprob), compression_ratio=float(result.compression_ratio),
            no_speech_prob=float(result.no_speech_prob), rejected=None,
            prompt=describe_prompt(decoder.prompt, tokenizer), steps=steps, tree=tree,
            cross=cross, words=words, alignment_path=path, residuals=residuals,
        ))
        return result


class _RequestModel:
    """The model as one request's `whisper.transcribe` sees it: the shared model's attributes, with
    `decode` and `detect_language` of this request's own (nothing is set on the shared model)."""

    def __init__(self, model, recorder: _Recorder):
        self._model = model
        self.decode = recorder.decode
        self.detect_language = recorder.detect_language

    def __getattr__(self, name: str):
        return getattr(self._model, name)


def _rejection(a: Attempt, o: AnalysisOptions) -> str | None:
    """Why whisper.transcribe's fallback would try again after this attempt (its own tests, in order)."""
    reasons = []
    if o.compression_ratio_threshold is not None and a.compression_ratio > o.compression_ratio_threshold:
        reasons.append(f"too repetitive: compression ratio {a.compression_ratio:.2f} > {o.compression_ratio_threshold}")
    if o.logprob_threshold is not None and a.avg_logprob < o.logprob_threshold:
        reasons.append(f"low confidence: average log-probability {a.avg_logprob:.2f} < {o.logprob_threshold}")
    if (o.no_speech_threshold is not None and o.logprob_threshold is not None
            and a.no_speech_prob > o.no_speech_threshold and a.avg_logprob < o.logprob_threshold):
        return None  # taken as silence: no fallback
    return "; ".join(reasons) or None


def _skipped(a: Attempt, o: AnalysisOptions) -> bool:
    if o.no_speech_threshold is None:
        return False
    skip = a.no_speech_prob > o.no_speech_threshold
    if o.logprob_threshold is not None and a.avg_logprob > o.logprob_threshold:
        skip = False
    return skip


def _finish_window(w: _WindowRecord, o: AnalysisOptions) -> Window:
    """Every attempt gets an honest verdict: whisper keeps the last attempt even when it failed the checks
    (it has run out of temperatures), so "kept" must not be read as "passed"."""
    attempts = w.attempts
    final = []
    for i, a in enumerate(attempts):
        failed = _rejection(a, o)
        if i < len(attempts) - 1:  # a rejected attempt keeps its text, tokens and tree, not its attention
            a = dataclasses.replace(a, rejected=failed or "rejected", failed_checks=failed or "rejected", cross=None,
                                    residuals=None, words=[], alignment_path=None)
        else:
            a = dataclasses.replace(a, failed_checks=failed)
        final.append(a)
    return Window(
        index=w.index, start_s=w.start_s, content_s=w.content_frames * FRAME_S, mel=w.mel,
        mel_stats=w.mel_stats, conv1=w.conv1, conv2=w.conv2, encoder_input=w.encoder_input,
        encoder=w.encoder, attempts=final, skipped_as_silence=_skipped(final[-1], o), captured=w.captured,
    )


def _language(model, recorder: _Recorder, mel_first: torch.Tensor | None) -> LanguageGuess:
    if not model.is_multilingual:
        return LanguageGuess(False, "en", {}, f"{getattr(model, 'name', 'this model')} is English-only: "
                             "it has no language tokens, so there is nothing to detect.")
    probs = recorder.language_probs
    note = "detected by whisper.transcribe on the first 30 s"
    if probs is None and mel_first is not None:
        _, found = model.detect_language(mel_first)
        probs = found if isinstance(found, dict) else found[0]
        note = "language was fixed; this is what detection on the first 30 s would have said"
    probs = dict(sorted(((k, float(v)) for k, v in (probs or {}).items()), key=lambda kv: -kv[1]))
    detected = next(iter(probs), None)
    return LanguageGuess(True, detected, probs, note + (f" ({LANGUAGES.get(detected, detected)})" if detected else ""))


def analyze(model, audio: Audio | np.ndarray | str | Path, options: AnalysisOptions | None = None,
            on_progress: Callable[[str], None] | None = None,
            submit: Callable[[DecodeJob], object] | None = None,
            cancelled: threading.Event | None = None) -> Trace:
    """Transcribe `audio` as whisper.transcribe would, keeping every internal in the returned Trace.

    `on_progress` hears one short line per stage (a window starts, a decode attempt starts). `submit`
    decodes each window (the engine's batching worker); by default each is decoded at once, alone.
    `cancelled`, once set, fails the run's next window instead of decoding it."""
    options = options or AnalysisOptions()
    if not isinstance(audio, Audio):
        audio = load_audio(audio) if isinstance(audio, (str, Path)) else Audio(
            np.asarray(audio, dtype=np.float32), "array", SAMPLE_RATE, 1, "pcm_f32le", "numpy")
    fp16 = model.device.type == "cuda"
    recorder = _Recorder(model, options, audio.samples, submit or (lambda job: run_alone(model, job)),
                         on_progress, cancelled)
    started = time.perf_counter()
    proxy = _RequestModel(model, recorder)
    result = whisper.transcribe(proxy, audio.samples, **options.transcribe_kwargs(model.is_multilingual, fp16))
    mel_first = None
    if model.is_multilingual and recorder.language_probs is None:
        mel_first = whisper.pad_or_trim(recorder.mel, N_FRAMES).to(model.device)
        mel_first = mel_first.half() if fp16 else mel_first
    language = _language(proxy, recorder, mel_first)
    total = time.perf_counter() - started
    windows = [_finish_window(w, options) for w in recorder.windows]
    segments = [
        Segment(float(s["start"]), float(s["end"]), s["text"], list(s["tokens"]), float(s["temperature"]),
                float(s["avg_logprob"]), float(s["compression_ratio"]), float(s["no_speech_prob"]))
        for s in result["segments"]
    ]
    timings = {k: v * 1000 for k, v in recorder.timings.items()}
    timings["total"] = total * 1000
    timings["decoding"] = timings["total"] - sum(v for k, v in timings.items() if k != "total")
    return Trace(
        version=TRACE_VERSION, audio_name=audio.name, audio=audio.samples, sample_rate_in=audio.sample_rate_in,
        channels_in=audio.channels_in, codec=audio.codec, model=model_info(model), options=options,
        language=language, windows=windows, segments=segments, text=result["text"], timings_ms=timings,
    )
