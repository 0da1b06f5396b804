"""A stream: audio arrives in chunks, each update re-reads the buffer and a policy commits words.

This is ufal/whisper_streaming's `OnlineASRProcessor` in our terms. The buffer holds the audio since
the last trim point; every `chunk_s` of new audio (its `--min-chunk-size`) the buffer is decoded once
(`listen`: a greedy look with word timings, through the engine with every other listener's rows), with
the committed text that has left the buffer as the prompt (its last 200 characters, as
whisper_streaming does). The policy (`policy.Agreement`) then commits what it can. Once the buffer is
longer than `trim_s` (whisper_streaming's `--buffer_trimming_sec`, 15 s) it is cut where the last
committed sentence ends, or, past 20 s with no sentence committed (tiny.en often writes no full stops
without timestamps), where the last committed word ends; so a stream of any length decodes at most 30 s
at a time and keeps its memory flat. Audio that must leave a full 30 s buffer uncommitted takes its
tentative words with it, committed as last heard, rather than losing them.

A look that falls into a loop (one phrase over and over, `Heard.repeating`: "6 6 6 6 ...") commits
nothing: the loop would become the next prompt and start the next loop. A prompted look that loops is
decoded once more without its prompt, the usual cause (whisper.transcribe drops the prompt when it falls
back to a high temperature, for the same reason).

The stream's clock is the audio received, not the wall: an update at `time_s` saw exactly the first
`time_s` seconds. So a replay of a clip gives the same updates every time for the same settings, and a
word's lag (`committed_s - heard_s`) leaves out the decode's own time, which `Update.decode_s` reports
apart (whisper_streaming calls this the computation-unaware simulation).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from whisper_inquiry.errors import InquiryError
from whisper_inquiry.instruments.live import next_draft
from whisper_inquiry.streaming.policy import (
    EPSILON_S,
    Agreement,
    AlignAtt,
    CommittedWord,
    LocalAgreement,
    Policy,
    StreamWord,
)
from whisper_inquiry.trace.schema import SAMPLE_RATE

__all__ = ["Listen", "StreamOptions", "StreamResult", "Streamer", "Update", "chunks", "engine_listen", "replay"]

MAX_BUFFER_S = 30.0  # whisper's window: a buffer never grows past it
FORCED_TRIM_S = 20.0  # past this with no committed sentence, the buffer is cut after the last committed word

# (samples of the buffer, prompt text, draft tokens) -> live.Heard: `Engine.listen` with `timed=True`
Listen = Callable[[np.ndarray, str, Sequence[int]], object]


@dataclass(frozen=True)
class StreamOptions:
    """How a stream is read; checked once, here."""

    policy: Policy = LocalAgreement()
    chunk_s: float = 1.0  # whisper_streaming's --min-chunk-size
    trim_s: float = 15.0  # whisper_streaming's --buffer_trimming_sec
    prompt_chars: int = 200  # committed text before the buffer, given as the prompt

    def __post_init__(self) -> None:
        if not 0.1 <= self.chunk_s <= 10:
            raise InquiryError(f"the chunk size must be between 0.1 and 10 s, not {self.chunk_s:g}")
        if not 2 <= self.trim_s <= FORCED_TRIM_S:
            raise InquiryError(f"the buffer trimming length must be between 2 and {FORCED_TRIM_S:g} s, "
                               f"not {self.trim_s:g}")

    def describe(self) -> str:
        return f"{self.policy.name}, chunks of {self.chunk_s:g} s"

    @property
    def margin_s(self) -> float | None:
        """AlignAtt's forbidden edge at the end of the audio heard (None under LocalAgreement)."""
        return self.policy.margin_s if isinstance(self.policy, AlignAtt) else None


@dataclass(frozen=True)
class Update:
    """One look at the buffer and what the policy made of it."""

    time_s: float  # audio received when it ran: the buffer is [buffer_start_s, time_s]
    buffer_start_s: float
    hypothesis: tuple[StreamWord, ...]  # every word of the buffer, as decoded this time
    committed: tuple[CommittedWord, ...]  # what this update committed
    tentative: tuple[StreamWord, ...]  # what stays uncommitted after it
    trimmed_to_s: float | None  # where the buffer was cut after this update (None: it was not)
    decode_s: float  # the decode's wall time: not part of the stream's clock
    final: bool = False  # the end of the stream: its whole hypothesis is committed
    looped: bool = False  # the decoder fell into a loop, with and without the prompt: nothing was committed


@dataclass
class StreamResult:
    """A whole stream: its updates and everything committed (the end-of-stream flush included)."""

    options: StreamOptions
    duration_s: float
    updates: list[Update]
    committed: list[CommittedWord]

    @property
    def text(self) -> str:
        return "".join(w.word for w in self.committed).strip()

    def lags_s(self) -> np.ndarray:
        return np.array([w.lag_s for w in self.committed], dtype=np.float64)

    def lag_summary(self) -> dict[str, float] | None:
        """Median and 90th percentile of the words' lag (None: nothing was committed)."""
        lags = self.lags_s()
        if not len(lags):
            return None
        return {"median_s": float(np.median(lags)), "p90_s": float(np.percentile(lags, 90))}

    def to_json(self) -> dict:
        """The CLI's document: every update with its hypothesis and the words it committed, then the
        whole committed transcript with when each word was heard and committed."""
        def word(w: StreamWord) -> dict:
            return {"word": w.word, "start": round(w.start_s, 3), "end": round(w.end_s, 3)}

        by_update = [{"time_s": round(u.time_s, 3), "buffer_start_s": round(u.buffer_start_s, 3),
                      "hypothesis": [word(w) for w in u.hypothesis],
                      "committed": [{"word": c.word, "start": round(c.start_s, 3), "end": round(c.heard_s, 3)}
                                    for c in u.committed],
                      "tentative": [word(w) for w in u.tentative],
                      "trimmed_to_s": None if u.trimmed_to_s is None else round(u.trimmed_to_s, 3),
                      "decode_s": round(u.decode_s, 3), "final": u.final} for u in self.updates]
        policy = self.options.policy
        return {
            "policy": {"name": "local-agreement", "n": policy.n} if isinstance(policy, LocalAgreement)
            else {"name": "alignatt", "frames": policy.frames},
            "chunk_s": self.options.chunk_s, "trim_s": self.options.trim_s, "duration_s": round(self.duration_s, 3),
            "updates": by_update,
            "committed": [{"word": c.word, "heard_s": round(c.heard_s, 3), "committed_s": round(c.committed_s, 3)}
                          for c in self.committed],
            "text": self.text, "lag": self.lag_summary(),
        }


@dataclass
class Streamer:
    """One stream: `feed` it audio, `update` it every chunk, `finish` it at the end.

    `keep_updates` bounds the updates it remembers (a microphone left on for an hour); None keeps all."""

    listen: Listen
    options: StreamOptions = field(default_factory=StreamOptions)
    keep_updates: int | None = None
    agreement: Agreement = field(init=False)
    updates: list[Update] = field(default_factory=list, init=False)
    last_heard: object | None = field(default=None, init=False)  # the last decode (its log-mel, its tokens)
    _buffer: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), init=False)
    _buffer_start_s: float = field(default=0.0, init=False)
    _received: int = field(default=0, init=False)  # samples so far
    _at_last_update: int = field(default=0, init=False)
    _draft: tuple[int, ...] = field(default=(), init=False)
    # what a full buffer's overflow committed and where it cut, told by the next update
    _overflow_committed: list[CommittedWord] = field(default_factory=list, init=False)
    _overflow_cut_s: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.agreement = Agreement(self.options.policy)

    # -- audio in --------------------------------------------------------------------------------------
    def feed(self, samples: np.ndarray) -> None:
        self._buffer = np.concatenate([self._buffer, np.asarray(samples, np.float32)])
        self._received += len(samples)
        overflow = len(self._buffer) - int(MAX_BUFFER_S * SAMPLE_RATE)
        if overflow > 0:  # nothing was committed for 30 s (music, a language the model cannot write)
            cut_s = self._buffer_start_s + overflow / SAMPLE_RATE
            self._overflow_committed += self.agreement.commit_before(cut_s, self.received_s)
            self._cut(cut_s)
            self._overflow_cut_s = self._buffer_start_s

    @property
    def received_s(self) -> float:
        return self._received / SAMPLE_RATE

    @property
    def buffer_start_s(self) -> float:
        return self._buffer_start_s

    @property
    def buffer_s(self) -> float:
        return len(self._buffer) / SAMPLE_RATE

    def due(self) -> bool:
        """A chunk's worth of new audio has arrived since the last update."""
        return self._received - self._at_last_update >= round(self.options.chunk_s * SAMPLE_RATE)

    # -- updates ---------------------------------------------------------------------------------------
    def update(self, final: bool = False) -> Update:
        """Decode the buffer once and let the policy commit; `final`: the stream ended, commit it all."""
        now_s = self.received_s
        started = time.perf_counter()
        prompt = self._prompt()
        heard = self.listen(self._buffer, prompt, self._draft) if len(self._buffer) else None
        if heard is not None and heard.repeating and prompt:
            heard = self.listen(self._buffer, "", ())
        decode_s = time.perf_counter() - started
        looped = heard is not None and bool(heard.repeating)
        hypothesis = [] if looped else _hypothesis(heard, self._buffer_start_s)
        if heard is not None:
            self.last_heard = heard
            self._draft = next_draft(self._draft, heard)
        commit = self.agreement.finish if final else self.agreement.update
        committed = self._overflow_committed + commit(hypothesis, now_s)
        self._at_last_update = self._received
        start_s = self._buffer_start_s
        trimmed = None if final else self._trim()
        if trimmed is None and self._overflow_cut_s is not None:
            trimmed = self._overflow_cut_s  # the overflow's cut, made before this look: its buffer's start
        self._overflow_committed, self._overflow_cut_s = [], None
        update = Update(now_s, start_s, tuple(hypothesis), tuple(committed), tuple(self.agreement.tentative),
                        trimmed, decode_s, final, looped)
        self.updates.append(update)
        if self.keep_updates is not None:
            del self.updates[: -self.keep_updates]
        return update

    def finish(self) -> Update:
        """The end of the stream: one last look at what is left, all of it committed."""
        return self.update(final=True)

    def _prompt(self) -> str:
        """Committed text that has left the buffer, its last `prompt_chars` characters at word boundaries."""
        words, size = [], 0
        for w in reversed(self.agreement.committed):
            if w.heard_s > self._buffer_start_s + EPSILON_S:
                continue
            if size + len(w.word) > self.options.prompt_chars:
                break
            words.append(w.word)
            size += len(w.word)
        return "".join(reversed(words)).strip()

    def _trim(self) -> float | None:
        if self.buffer_s <= self.options.trim_s:
            return None
        cut = self.agreement.last_sentence_end(self._buffer_start_s)
        if cut is None and self.buffer_s > FORCED_TRIM_S and self.agreement.last_end_s > self._buffer_start_s:
            cut = self.agreement.last_end_s
        if cut is None:
            return None
        self._cut(cut)
        return cut

    def _cut(self, time_s: float) -> None:
        n = len(self._buffer)
        drop = min(n, max(0, round((time_s - self._buffer_start_s) * SAMPLE_RATE)))
        self._buffer = self._buffer[drop:].copy()
        # the cut's own time where it falls inside the buffer, not the sum of samples dropped: that sum lands
        # a hair before a word's end now and then, and the word would count as still in the buffer
        end_s = self._buffer_start_s + n / SAMPLE_RATE
        self._buffer_start_s = min(max(self._buffer_start_s, time_s), end_s)
        self.agreement.forget_before(self._buffer_start_s)
        self._draft = ()  # the buffer now starts elsewhere: the last tokens no longer fit it

    def result(self) -> StreamResult:
        return StreamResult(self.options, self.received_s, list(self.updates), list(self.agreement.committed))


def _hypothesis(heard, offset_s: float) -> list[StreamWord]:
    if heard is None:
        return []
    attended = heard.word_attended_s or (None,) * len(heard.words)
    return [StreamWord(w.word, offset_s + w.start_s, offset_s + w.end_s, None if a is None else offset_s + a)
            for w, a in zip(heard.words, attended)]


def chunks(samples: np.ndarray, chunk_s: float) -> Iterator[np.ndarray]:
    size = max(1, round(chunk_s * SAMPLE_RATE))
    for i in range(0, len(samples), size):
        yield samples[i: i + size]


def replay(listen: Listen, samples: np.ndarray, options: StreamOptions | None = None,
           on_update: Callable[[Update, Streamer], None] | None = None) -> StreamResult:
    """A clip fed as a stream, one chunk at a time: an update after every whole chunk, and a final one
    at the end (the only one for a clip shorter than a chunk). The same clip and options give the same
    updates every time. `on_update` sees each update as it is made (the Live page draws it; what it
    raises stops the replay)."""
    streamer = Streamer(listen, options or StreamOptions())
    pieces = list(chunks(np.asarray(samples, np.float32), streamer.options.chunk_s))
    for piece in pieces[:-1]:  # whole chunks: only the last piece can be short
        streamer.feed(piece)
        u = streamer.update()
        if on_update is not None:
            on_update(u, streamer)
    streamer.feed(pieces[-1] if pieces else np.zeros(0, np.float32))
    u = streamer.finish()
    if on_update is not None:
        on_update(u, streamer)
    return streamer.result()


def engine_listen(engine) -> Listen:
    """An engine's `listen` as a stream reads it: timed words, the prompt, the draft."""
    return lambda samples, prompt, draft: engine.listen(samples, draft=draft, timed=True, prompt=prompt)

