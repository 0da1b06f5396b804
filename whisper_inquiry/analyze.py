"""`analyze(model, audio, options) -> Trace`: whisper.transcribe, run once, with everything recorded.

The decoding is openai-whisper's own: `whisper.transcribe` cuts the windows and falls back to higher
temperatures, `DecodingTask` decodes. For the length of the run the model's `decode` and
`detect_language` are replaced by recording versions that build the very same `DecodingTask`, and
transcribe's `pad_or_trim` is wrapped to learn where each window starts; all of it is undone in a
`finally`. The tokens are therefore the ones whisper.transcribe would produce, token for token.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import whisper
from whisper.audio import N_FRAMES, N_SAMPLES, log_mel_spectrogram
from whisper.decoding import DecodingTask
from whisper.tokenizer import LANGUAGES

from . import points
from .alignment import teacher_forced, word_timings
from .attention import activation, content_positions, encoder_attention, tensor_stats
from .audio import SAMPLE_RATE, Audio, load_audio
from .capture import RUN_LOCK, Hooks
from .models import model_info
from .options import AnalysisOptions
from .search import RecordingDecoder, RecordingRanker, build_tree
from .tokens import describe_prompt, token_steps
from .trace import (
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

_transcribe_module = importlib.import_module("whisper.transcribe")  # `whisper.transcribe` is the function


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
    """State of one run: the windows seen so far and the time spent on instrumentation."""

    def __init__(self, model, options: AnalysisOptions, on_progress: Callable[[str], None] | None = None):
        self.model = model
        self.options = options
        self.on_progress = on_progress or (lambda message: None)
        self.windows: list[_WindowRecord] = []
        self.next_window: tuple[int, int] | None = None  # (seek, content frames) from pad_or_trim
        self.captured: dict[str, torch.Tensor] = {}  # latest output of each capture point
        self.language_probs: dict[str, float] | None = None
        self.timings: dict[str, float] = defaultdict(float)
        self.extras: list[points.CapturePoint] = []  # registered capture points hooked for this run
        self._pad_or_trim = None  # the originals, read under the run lock by `instrumented`
        self._detect_language = None

    # -- the seams ---------------------------------------------------------------------------
    def pad_or_trim(self, array, length: int = N_SAMPLES, *, axis: int = -1):
        if torch.is_tensor(array) and array.ndim == 2 and length == N_FRAMES:
            self.next_window = (array.storage_offset(), array.shape[-1])
        return self._pad_or_trim(array, length, axis=axis)

    def detect_language(self, mel, tokenizer=None):
        tokens, probs = self._detect_language(mel, tokenizer)
        if self.language_probs is None:
            self.language_probs = probs[0] if isinstance(probs, list) else probs
        return tokens, probs

    @torch.no_grad()
    def decode(self, mel: torch.Tensor, options):
        """Stands in for `model.decode`: the same `DecodingTask`, its decoder and ranker wrapped."""
        task = DecodingTask(self.model, options)
        decoder = RecordingDecoder(task.decoder, task.sample_begin, task.tokenizer.eot, self.options.top_k)
        ranker = RecordingRanker(options.length_penalty)
        task.decoder, task.sequence_ranker = decoder, ranker
        if self.next_window is not None:
            seek, size = self.next_window
            self.on_progress(f"window {len(self.windows) + 1}: {seek / 100:.1f} to {(seek + size) / 100:.1f} s")
        self.on_progress(f"decoding at temperature {options.temperature:.1f}")
        result = task.run(mel.unsqueeze(0) if mel.ndim == 2 else mel)[0]
        if self.next_window is not None:
            self._start_window(mel)
        self.windows[-1].attempts.append(self._attempt(task, decoder, ranker, result))
        return result

    # -- what each call leaves behind --------------------------------------------------------
    def _start_window(self, mel: torch.Tensor) -> None:
        seek, size = self.next_window
        self.next_window = None
        enc, n = self.captured, self.model.dims.n_audio_layer
        pos = self.model.encoder.positional_embedding
        conv2 = F.gelu(enc[points.ENCODER_CONV2][0].float())
        t = time.perf_counter()
        attention = encoder_attention(
            [enc[points.encoder_query(i)][0] for i in range(n)], [enc[points.encoder_key(i)][0] for i in range(n)],
            self.model.dims.n_audio_head, self.options.qk_budget_mb, content_positions(size * FRAME_S),
        )
        self.timings["encoder attention"] += time.perf_counter() - t
        captured = {name: np.asarray(point.keep(enc[name]))
                    for point in self.extras for name in point.names(self.model)}
        self.windows.append(_WindowRecord(
            index=len(self.windows), start_s=seek * FRAME_S, content_frames=size,
            mel=mel.float().cpu().numpy(), mel_stats=tensor_stats(mel),
            conv1=activation("conv1", F.gelu(enc[points.ENCODER_CONV1][0].float()), FRAME_S),
            conv2=activation("conv2", conv2, AUDIO_CTX_S),
            encoder_input=activation("encoder input", (conv2.T + pos.float()).T, AUDIO_CTX_S),
            encoder=attention, features=enc[points.ENCODER_OUTPUT], captured=captured,
        ))

    def _attempt(self, task: DecodingTask, decoder: RecordingDecoder, ranker: RecordingRanker, result) -> Attempt:
        tokenizer = task.tokenizer
        t = time.perf_counter()
        tree = build_tree(decoder, ranker, result.tokens, self.options.strategy, tokenizer.decode_with_timestamps)
        steps = token_steps(decoder, result.tokens, tokenizer, self.options.top_k)
        self.timings["search tree and tokens"] += time.perf_counter() - t
        window = self.windows[-1]
        t = time.perf_counter()
        generated = [s.id for s in steps]
        cross_kv = {  # the decode's own cross-attention keys and values, as the blocks' cache
            self.model.get_submodule(name): self.captured[name][:1]
            for i in range(self.model.dims.n_text_layer) for name in (points.cross_key(i), points.cross_value(i))
        }
        cross, scores, residuals = teacher_forced(
            self.model, window.features[:1], cross_kv, decoder.prompt + generated, task.sample_begin,
            self.options.cross_budget_mb,
        )
        words, path = word_timings(scores, cross.alignment_heads, generated, [s.prob for s in steps], tokenizer,
                                   window.content_frames, window.start_s)
        self.timings["cross-attention and words"] += time.perf_counter() - t
        return Attempt(
            temperature=float(result.temperature), text=result.text, tokens=list(result.tokens),
            avg_logprob=float(result.avg_logprob), compression_ratio=float(result.compression_ratio),
            no_speech_prob=float(result.no_speech_prob), rejected=None,
            prompt=describe_prompt(decoder.prompt, tokenizer), steps=steps, tree=tree,
            cross=cross, words=words, alignment_path=path, residuals=residuals,
        )


@contextmanager
def instrumented(model, recorder: _Recorder) -> Iterator[Hooks]:
    """Install the recording seams and every capture point of the run (`points.py`); remove every one
    of them on the way out."""
    with RUN_LOCK, Hooks() as hooks:
        def keep(name, output):
            recorder.captured[name] = output.detach()

        installed = points.install(hooks, model, points.RUN, keep)
        recorder.extras = [p for p in installed if p.keep is not None]
        original_pad_or_trim = _transcribe_module.pad_or_trim
        recorder._pad_or_trim, recorder._detect_language = original_pad_or_trim, model.detect_language
        model.decode = recorder.decode
        model.detect_language = recorder.detect_language
        _transcribe_module.pad_or_trim = recorder.pad_or_trim
        try:
            yield hooks
        finally:
            _transcribe_module.pad_or_trim = original_pad_or_trim
            for name in ("decode", "detect_language"):
                model.__dict__.pop(name, None)


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
            on_progress: Callable[[str], None] | None = None) -> Trace:
    """Transcribe `audio` as whisper.transcribe would, keeping every internal in the returned Trace.

    `on_progress` hears one short line per stage (a window starts, a decode attempt starts)."""
    options = options or AnalysisOptions()
    if not isinstance(audio, Audio):
        audio = load_audio(audio) if isinstance(audio, (str, Path)) else Audio(
            np.asarray(audio, dtype=np.float32), "array", SAMPLE_RATE, 1, "pcm_f32le", "numpy")
    fp16 = model.device.type == "cuda"
    recorder = _Recorder(model, options, on_progress)
    started = time.perf_counter()
    devices = [model.device.index or 0] if model.device.type == "cuda" else []
    with instrumented(model, recorder), torch.random.fork_rng(devices=devices):
        torch.manual_seed(options.seed)  # sampling and fallback reproducible; the caller's RNG is restored on exit
        result = whisper.transcribe(model, audio.samples, **options.transcribe_kwargs(model.is_multilingual, fp16))
        mel_first = None
        if model.is_multilingual and recorder.language_probs is None:
            mel = log_mel_spectrogram(audio.samples, model.dims.n_mels, padding=N_SAMPLES)
            mel_first = whisper.pad_or_trim(mel, N_FRAMES).to(model.device)
            mel_first = mel_first.half() if fp16 else mel_first
        language = _language(model, recorder, mel_first)
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
