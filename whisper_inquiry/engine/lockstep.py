"""Decode windows together in lockstep: whisper's `DecodingTask` over a batch of windows of equal
options, each window's rows recorded apart. The engine's worker (`worker.Worker`) runs these groups;
windows that are rows of their own go through `continuous.py` instead, and reuse `decode_windows` with
that module's `Inference` role.

whisper's `DecodingTask` takes one options object, one prompt included, for its whole batch, so a
clip's later windows (each prompted with the text before it) and windows of another task, language or
strategy form groups of their own. Two things whisper's loop would get wrong in a batch are put right
here, for the task at hand only:

- beam search and best-of sampling: openai-whisper 20250625 repeats the tokens by the group size but
  not the audio features (a batch of one window works only by broadcasting), so `decode_windows` hands
  its loop the features repeated per row, as the rest of `DecodingTask.run` expects;
- sampling (temperature above 0, the fallback ladder): the draws of a batch would come from one random
  stream, so each window draws from a stream of its own (`SeededSampler`) and gets the same tokens
  alone or beside others.

Language detection batches too (whisper's `detect_language` takes a batch of log-mels).

The encoder runs once per window, alone: on a CPU it costs the same per window at any batch size,
and alone its activations (conv, queries, keys) are exactly the solo run's. Only the decoder loop is
batched; each request's rows are recorded by its own `RecordingDecoder` (search.BatchDecoder).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from whisper.decoding import (
    BeamSearchDecoder,
    DecodingOptions,
    DecodingResult,
    DecodingTask,
    GreedyDecoder,
    Inference,
    PyTorchInference,
)

from whisper_inquiry.engine.drafts import DraftInference, DraftRowInference
from whisper_inquiry.engine.repeats import StopRepeating
from whisper_inquiry.instruments import points
from whisper_inquiry.instruments.capture import Hooks, model_lock
from whisper_inquiry.instruments.search import BatchDecoder, RecordingDecoder, RecordingRanker

if TYPE_CHECKING:  # only named in annotations: continuous.py imports this module's users
    from whisper_inquiry.engine.continuous import StepInference


@dataclass
class Decoded:
    """One window's decode: whisper's result and the recording of its search."""

    result: DecodingResult
    decoder: RecordingDecoder
    ranker: RecordingRanker
    tokenizer: object
    sample_begin: int
    cross_kv: dict  # cross-attention key/value module -> its output for this window (1, n_ctx, n_state)
    passes: int | None = None  # decoder passes of the batch, where a draft made them fewer than its tokens


@dataclass
class DecodeJob:
    """One window to decode (kind "decode") or to detect the language of (kind "detect")."""

    mel: torch.Tensor  # (n_mels, 3000) as whisper.transcribe hands it to model.decode
    options: DecodingOptions | None
    top_k: int = 10
    # the window's encoder output, when an earlier attempt at the same window computed it
    features: torch.Tensor | None = None
    # called in the worker after the encoder pass: (captured outputs by module path, features)
    on_encoded: Callable[[dict, torch.Tensor], None] | None = None
    # called in the worker after the decode, while the model is still the worker's (teacher-forced pass)
    on_decoded: Callable[[Decoded], object] | None = None
    kind: str = "decode"
    # the random stream of a sampled decode (temperature > 0): its own, so a window draws the same
    # tokens alone or beside others, whatever else the process samples meanwhile
    seed: int | None = None
    cancelled: threading.Event | None = None
    # greedy only: tokens this window probably writes (a Live listener's last refresh), checked in one
    # decoder pass instead of one pass per token (drafts.DraftInference); the tokens written are the same
    draft: tuple[int, ...] | None = None
    # Live's rule: end the decode once it repeats one short phrase over and over (repeats.py)
    stop_repeating: bool = False
    future: Future = field(default_factory=Future)
    enqueued_s: float = field(default_factory=time.perf_counter)

    def share_key(self) -> str | None:
        """Jobs with equal keys can be decoded in one pass; None: alone (see the module docstring)."""
        if self.kind == "detect":
            return "detect" if self.mel.ndim == 2 else None
        if self.draft:
            # alone: a batch's rows share one key/value cache, so every row would pay for a pass that any
            # one row's rejected draft token forces (several times the passes of each alone)
            return None
        return repr(self.options) + (" stop repeating" if self.stop_repeating else "")


def encode_window(model, job: DecodeJob) -> torch.Tensor:
    """The encoder on one window, with every RUN capture point of the encoder hooked."""
    if job.features is not None:
        return job.features
    captured: dict[str, torch.Tensor] = {}
    with Hooks(model) as hooks:
        def keep(name, output):
            captured[name] = output.detach()

        for point in points.points(points.RUN):
            if point.path.startswith("encoder"):
                for name in point.names(model):
                    hooks.output(name, model.get_submodule(name), keep)
        features = model.encoder(job.mel[None])  # (1, n_ctx, n_state)
    captured[points.ENCODER_OUTPUT] = features
    if job.on_encoded is not None:
        job.on_encoded(captured, features)
    return features


@dataclass
class WorkerStats:
    """What the worker has done: windows decoded by their batch size, the most windows that shared a
    decoder pass with them, itself included (also by kind: "greedy", "sampled" at a temperature above
    0, "beam"), and its seconds by stage, where a loaded worker's time goes."""

    batch_sizes: Counter = field(default_factory=Counter)
    batch_sizes_by_kind: dict = field(default_factory=dict)
    busy_s: Counter = field(default_factory=Counter)
    # windows in flight by who decided their steps: "batched step" (batched.py) or "whisper's loop"
    deciders: Counter = field(default_factory=Counter)

    def passed(self, options: DecodingOptions, size: int, windows: int = 1) -> None:
        self.batch_sizes[size] += windows
        self.batch_sizes_by_kind.setdefault(_kind(options), Counter())[size] += windows


def decode_group(model, jobs: list[DecodeJob], stats: WorkerStats | None = None) -> None:
    """Decode jobs of equal options in one DecodingTask pass; each job's future gets its own result.
    A group whose pass fails is retried one job at a time, so one bad window never fails its
    batch-mates. The pass is counted in `stats` before any job hears its result."""
    stats = WorkerStats() if stats is None else stats
    busy = stats.busy_s
    with model_lock(model), torch.no_grad():
        started = time.perf_counter()
        ready, features = [], []
        for job in jobs:
            try:
                features.append(encode_window(model, job))
                ready.append(job)
            except Exception as e:  # noqa: BLE001 - the job's own failure, handed to its request
                job.future.set_exception(e)
        if not ready:
            return
        busy["encode"] += time.perf_counter() - started
        started = time.perf_counter()
        try:
            decoded = decode_windows(model, ready, torch.cat(features))
        except Exception as e:  # noqa: BLE001
            if len(ready) == 1:
                stats.passed(ready[0].options, 1)
                ready[0].future.set_exception(e)
                return
            for job, f in zip(ready, features):
                job.features = f
                decode_group(model, [job], stats)
            return
        stats.passed(ready[0].options, len(ready), len(ready))
        busy["decode"] += time.perf_counter() - started
        started = time.perf_counter()
        for job, d in zip(ready, decoded):
            try:
                job.future.set_result(job.on_decoded(d) if job.on_decoded is not None else d)
            except Exception as e:  # noqa: BLE001
                job.future.set_exception(e)
        busy["after decode"] += time.perf_counter() - started


def decode_windows(model, jobs: list[DecodeJob], features: torch.Tensor,
                   rows: StepInference | None = None) -> list[Decoded]:
    """whisper's DecodingTask over the jobs' windows (equal options), each window's search recorded.
    With `rows`, the one window is decoded as rows in flight beside others (continuous.py)."""
    task = DecodingTask(model, jobs[0].options)
    if jobs[0].stop_repeating:
        task.logit_filters.append(StopRepeating(task.sample_begin, task.tokenizer.eot))
    n_group = task.n_group  # rows per window: beam size or best_of (1 for greedy)
    if rows is not None and isinstance(task.decoder, BeamSearchDecoder):
        task.decoder.inference = rows  # beam search asks its inference to reorder the rows' caches
    if jobs[0].options.temperature > 0:
        task.decoder = SeededSampler(task.decoder, [job.seed or 0 for job in jobs], n_group, model.device)
    recorders = [RecordingDecoder(task.decoder, task.sample_begin, task.tokenizer.eot, job.top_k, group=i)
                 for i, job in enumerate(jobs)]
    if n_group > 1:
        # whisper 20250625 repeats the tokens by the group size but not the audio features (a batch of one
        # window only works by broadcasting), then takes every n_group-th feature row back out: hand it
        # the features repeated per row, as its loop expects, for this task only
        encoded, detect_language = task._get_audio_features, task._detect_language
        task._get_audio_features = lambda mel: encoded(mel).repeat_interleave(n_group, dim=0)
        task._detect_language = lambda features, tokens: detect_language(features[::n_group], tokens)
    task.decoder = BatchDecoder(task.decoder, [(slice(i * n_group, (i + 1) * n_group), r)
                                               for i, r in enumerate(recorders)])
    ranker = RecordingRanker(jobs[0].options.length_penalty)
    task.sequence_ranker = ranker
    drafted = any(job.draft for job in jobs) and n_group == 1 and jobs[0].options.temperature == 0
    if rows is not None:  # the window decoded beside whatever else is in flight (continuous.py)
        task.inference = rows if not drafted else DraftRowInference(
            rows, model, len(task.initial_tokens), jobs[0].draft, task.sample_begin, task.tokenizer.eot)
    elif drafted:
        task.inference = DraftInference(model, len(task.initial_tokens), [job.draft or () for job in jobs],
                                        task.sample_begin, task.tokenizer.eot)
    elif not isinstance(task.decoder.inner, BeamSearchDecoder) and len(jobs) * n_group > 1:
        task.inference = ShrinkingInference(task.inference, model, task.tokenizer.eot, task.sample_begin)
    try:
        if rows is not None:
            results = task.run(features)
            return [Decoded(results[0], recorders[0], ranker.of_group(0), task.tokenizer, task.sample_begin,
                            rows.cross_kv(), getattr(task.inference, "passes", None))]
        captured: dict[str, torch.Tensor] = {}
        with Hooks(model) as hooks:  # the decode's own cross-attention keys and values, reused for the attention
            def keep(name, output):
                captured.setdefault(name, output.detach())  # computed once, at the first step

            names = [name for i in range(model.dims.n_text_layer)
                     for name in (points.cross_key(i), points.cross_value(i))]
            for name in names:
                hooks.output(name, model.get_submodule(name), keep)
            results = task.run(features)
        return [
            Decoded(result, recorders[i], ranker.of_group(i), task.tokenizer, task.sample_begin,
                    {model.get_submodule(name): captured[name][i * n_group: i * n_group + 1] for name in names},
                    getattr(task.inference, "passes", None))
            for i, result in enumerate(results)
        ]
    finally:  # the lambdas above hold the task: a cycle that would keep it until a full collection
        task.__dict__.pop("_get_audio_features", None)
        task.__dict__.pop("_detect_language", None)


class SeededSampler(GreedyDecoder):
    """whisper's GreedyDecoder at a temperature above 0, each window's rows drawing from a random stream
    of their own (seeded by the request, the window and the temperature) instead of torch's global one:
    a window draws the same tokens alone or in a batch, whatever else the process samples meanwhile.
    The draw is the one `Categorical(logits / temperature).sample()` makes, a multinomial of the
    softmax; the score update is GreedyDecoder's own."""

    def __init__(self, inner: GreedyDecoder, seeds: list[int], n_group: int, device: torch.device):
        super().__init__(inner.temperature, inner.eot)
        self.n_group = n_group
        self.generators = [torch.Generator(device=device).manual_seed(seed % 2**63) for seed in seeds]

    def update(self, tokens: torch.Tensor, logits: torch.Tensor, sum_logprobs: torch.Tensor):
        probs = F.softmax(logits.float() / self.temperature, dim=-1)
        n = self.n_group
        next_tokens = torch.cat([torch.multinomial(probs[i * n: (i + 1) * n], 1, generator=g)[:, 0]
                                 for i, g in enumerate(self.generators)])
        logprobs = F.log_softmax(logits.float(), dim=-1)
        current_logprobs = logprobs[torch.arange(logprobs.shape[0]), next_tokens]
        sum_logprobs += current_logprobs * (tokens[:, -1] != self.eot)
        next_tokens[tokens[:, -1] == self.eot] = self.eot
        tokens = torch.cat([tokens, next_tokens[:, None]], dim=-1)
        return tokens, (tokens[:, -1] == self.eot).all()


class ShrinkingInference(Inference):
    """whisper's PyTorchInference for a batch of independent rows (greedy or sampled, never beam search,
    which reorders its rows), in which a row that has written end-of-text stops costing: it leaves the
    key/value caches and the decoder runs on the others only. `active` says which rows remain.

    whisper's loop still carries the finished row (GreedyDecoder only appends end-of-text to it, adding
    nothing to its score), so it gets finite placeholder logits (zeros) that nothing records."""

    def __init__(self, inner: PyTorchInference, model, eot: int, sample_begin: int):
        self.inner, self.eot, self.sample_begin = inner, eot, sample_begin
        self.cross = [m for block in model.decoder.blocks for m in (block.cross_attn.key, block.cross_attn.value)]
        self.active: torch.Tensor | None = None  # rows still writing, as indices into the batch

    def logits(self, tokens: torch.Tensor, audio_features: torch.Tensor) -> torch.Tensor:
        if self.active is None or tokens.shape[-1] <= self.sample_begin:
            self.active = torch.arange(tokens.shape[0], device=tokens.device)
            return self.inner.logits(tokens, audio_features)
        writing = tokens[self.active, -1] != self.eot
        if not bool(writing.all()):
            keep = writing.nonzero()[:, 0]
            for module in self.inner.kv_modules + self.cross:
                self.inner.kv_cache[module] = self.inner.kv_cache[module][keep].detach()
            self.active = self.active[keep]
        some = self.inner.logits(tokens[self.active], audio_features[self.active])
        out = some.new_zeros((tokens.shape[0], *some.shape[1:]))
        out[self.active] = some
        return out

    def cleanup_caching(self) -> None:
        self.inner.cleanup_caching()

    def rearrange_kv_cache(self, source_indices) -> None:
        raise NotImplementedError("rows that beam search reorders cannot leave the batch")


def detect(model, jobs: list[DecodeJob], stats: WorkerStats | None = None) -> None:
    """whisper's detect_language on several windows at once (it takes a batch of log-mels); a batch
    that fails is retried one window at a time, so a bad window fails alone."""
    stats = WorkerStats() if stats is None else stats
    started = time.perf_counter()
    with model_lock(model), torch.no_grad():
        try:
            if len(jobs) == 1:
                jobs[0].future.set_result(model.detect_language(jobs[0].mel))
            else:
                tokens, probs = model.detect_language(torch.stack([job.mel for job in jobs]))
                for job, t, p in zip(jobs, tokens, probs, strict=True):
                    job.future.set_result((t, p))
        except Exception as e:  # noqa: BLE001 - the job's own failure, handed to its request
            if len(jobs) == 1:
                jobs[0].future.set_exception(e)
            else:
                for job in jobs:
                    detect(model, [job], stats)
                return
    stats.busy_s["detect language"] += time.perf_counter() - started


def run_alone(model, job: DecodeJob):
    """Run one job in the calling thread (the library's `analyze` without an engine) and return its result."""
    if job.kind == "detect":
        detect(model, [job])
    else:
        decode_group(model, [job])
    return job.future.result()


def _kind(options: DecodingOptions) -> str:
    return "beam" if (options.beam_size or 1) > 1 else "sampled" if options.temperature > 0 else "greedy"
