"""Streaming policies: which words of a transcript that keeps changing are final.

Whisper reads up to 30 s at once and rewrites its whole transcript at every look. A streaming system
re-reads a buffer each time more audio arrives, and at every update must decide which words it will
never take back (committed) and which may still change (tentative). The field's two policies:

- **LocalAgreement-n** (ufal/whisper_streaming, WhisperLiveKit): a word is committed once n consecutive
  updates agree on it, as a prefix of what follows the words already committed. Early words settle
  fast, the last ones wait for the next look: its maintainers call the uneven output "a feature of
  local agreement".
- **AlignAtt** (simul_whisper, SimulStreaming): a token is committed unless the moment of audio its
  alignment heads attend to most lies within `frames` encoder frames (20 ms each) of the end of the
  audio heard so far: the decoder is reading where the audio stops, so the word may still be cut.
  SimulStreaming's default is 25 frames (0.5 s).

`Agreement` keeps one stream's committed words and applies either policy to each update's hypothesis
(words with whisper's timings, in seconds of the stream). It reads no model and no clock, so the
policies are tested on their own (tests/test_streaming_policy.py). What it keeps of whisper_streaming's
`HypothesisBuffer`: an update's words that start before the last committed word ended (less 0.1 s)
are the committed words heard again and are dropped, and so are up to 5 leading words that repeat the
last committed ones. AlignAtt here commits whole words only, and re-decodes the buffer at each update
rather than continuing from the committed tokens as SimulStreaming does; both policies then read the
same hypotheses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from whisper_inquiry.errors import InquiryError
from whisper_inquiry.trace.schema import AUDIO_CTX_S

__all__ = ["AlignAtt", "Agreement", "CommittedWord", "LocalAgreement", "Policy", "StreamWord", "policy_from"]

REHEARD_S = 0.1  # whisper_streaming: a word starting this close before the last committed end is heard again
OVERLAP_WORDS = 5  # at most this many leading words repeating the committed tail are dropped
OVERLAP_GAP_S = 1.0  # ... and only when the new words start within this of the committed tail's end
EPSILON_S = 1e-6  # times equal but for float rounding (a buffer cut where a word ends) are equal


@dataclass(frozen=True)
class StreamWord:
    """One word of an update's hypothesis."""

    word: str  # as whisper writes it, leading space included
    start_s: float  # in the stream
    end_s: float
    attended_s: float | None = None  # the latest most-attended moment among its tokens (AlignAtt reads it)


@dataclass(frozen=True)
class CommittedWord:
    """A word the stream will not take back."""

    word: str
    heard_s: float  # when it ended in the audio
    committed_s: float  # the audio received when it was committed
    start_s: float = 0.0  # when it began in the audio

    @property
    def lag_s(self) -> float:
        return self.committed_s - self.heard_s


@dataclass(frozen=True)
class LocalAgreement:
    n: int = 2  # whisper_streaming's default

    def __post_init__(self) -> None:
        if not 1 <= self.n <= 10:
            raise InquiryError(f"LocalAgreement needs n between 1 and 10, not {self.n}")

    @property
    def name(self) -> str:
        return f"LocalAgreement-{self.n}"


@dataclass(frozen=True)
class AlignAtt:
    frames: int = 25  # SimulStreaming's default: 25 encoder frames of 20 ms, half a second

    def __post_init__(self) -> None:
        if not 0 <= self.frames <= 500:
            raise InquiryError(f"AlignAtt needs a frame threshold between 0 and 500, not {self.frames}")

    @property
    def name(self) -> str:
        return f"AlignAtt ({self.frames} frames = {self.frames * AUDIO_CTX_S:.2f} s)"

    @property
    def margin_s(self) -> float:
        return self.frames * AUDIO_CTX_S


Policy = LocalAgreement | AlignAtt


def policy_from(name: str, n: int = 2, frames: int = 25) -> Policy:
    """A policy by its command-line name."""
    if name in ("local-agreement", "localagreement", "la"):
        return LocalAgreement(n)
    if name in ("alignatt", "align-att"):
        return AlignAtt(frames)
    raise InquiryError(f"unknown streaming policy {name!r}: choose local-agreement or alignatt")


def _same(a: StreamWord, b: StreamWord) -> bool:
    return a.word.strip() == b.word.strip()


@dataclass
class Agreement:
    """One stream's transcript: the words committed so far and the policy's state."""

    policy: Policy
    committed: list[CommittedWord] = field(default_factory=list)
    tentative: list[StreamWord] = field(default_factory=list)
    _last_end_s: float = 0.0
    _in_buffer: list[StreamWord] = field(default_factory=list)  # committed words still in the audio buffer
    _recent: list[list[StreamWord]] = field(default_factory=list)  # the last n - 1 updates' uncommitted words

    def new_words(self, hypothesis: Sequence[StreamWord]) -> list[StreamWord]:
        """The words of a hypothesis that follow what is committed (whisper_streaming's `insert`)."""
        words = [w for w in hypothesis if w.start_s > self._last_end_s - REHEARD_S]
        if words and self._in_buffer and abs(words[0].start_s - self._last_end_s) < OVERLAP_GAP_S:
            for i in range(1, min(len(self._in_buffer), len(words), OVERLAP_WORDS) + 1):
                if all(_same(a, b) for a, b in zip(self._in_buffer[-i:], words[:i])):
                    words = words[i:]
                    break
        return words

    def update(self, hypothesis: Sequence[StreamWord], now_s: float) -> list[CommittedWord]:
        """Apply the policy to one update's hypothesis, heard with `now_s` seconds of audio received;
        returns the words it commits."""
        words = self.new_words(hypothesis)
        if isinstance(self.policy, LocalAgreement):
            previous = self._recent[-(self.policy.n - 1):] if self.policy.n > 1 else []
            count = len(words) if len(previous) == self.policy.n - 1 else 0
            for earlier in previous:
                count = min(count, next((i for i, (a, b) in enumerate(zip(words, earlier)) if not _same(a, b)),
                                        min(len(words), len(earlier))))
            self._recent = [w[count:] for w in previous] + [words[count:]]
        else:
            limit_s = now_s - self.policy.margin_s
            count = next((i for i, w in enumerate(words) if w.attended_s is None or w.attended_s >= limit_s),
                         len(words))
        return self._commit(words, count, now_s)

    def finish(self, hypothesis: Sequence[StreamWord], now_s: float) -> list[CommittedWord]:
        """The stream ended: nothing more will be heard, so the last hypothesis is final as it stands."""
        words = self.new_words(hypothesis)
        self._recent = []
        return self._commit(words, len(words), now_s)

    def commit_before(self, time_s: float, now_s: float) -> list[CommittedWord]:
        """The audio before `time_s` leaves the buffer unagreed: its tentative words go as last heard."""
        count = next((i for i, w in enumerate(self.tentative) if w.end_s > time_s), len(self.tentative))
        # the earlier updates' words still count towards agreement, less those that left with the audio
        # (clearing them stalled LocalAgreement: a full buffer overflows at every update, so no update
        # ever had one before it to agree with)
        self._recent = [[w for w in words if w.end_s > time_s] for words in self._recent]
        return self._commit(self.tentative, count, now_s)  # what stays is tentative still

    def _commit(self, words: list[StreamWord], count: int, now_s: float) -> list[CommittedWord]:
        done = [CommittedWord(w.word, w.end_s, now_s, w.start_s) for w in words[:count]]
        self.committed.extend(done)
        self._in_buffer.extend(words[:count])
        if count:
            self._last_end_s = words[count - 1].end_s
        self.tentative = words[count:]
        return done

    def forget_before(self, time_s: float) -> None:
        """The audio buffer now starts at `time_s`: committed words before it cannot be heard again."""
        self._in_buffer = [w for w in self._in_buffer if w.end_s > time_s + EPSILON_S]

    def last_sentence_end(self, after_s: float) -> float | None:
        """Where the last committed sentence in the buffer ends (its final word's end), if any after
        `after_s`: whisper_streaming's "sentence" place to trim the buffer."""
        for w in reversed(self._in_buffer):
            if w.end_s > after_s + EPSILON_S and w.word.strip().endswith((".", "?", "!", "。", "？", "！")):
                return w.end_s
        return None

    @property
    def last_end_s(self) -> float:
        return self._last_end_s
