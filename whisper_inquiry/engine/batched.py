"""The batched step: every greedy or sampled window in flight decided by one operation per stage.

whisper's `DecodingTask` decides one window at a time: its logit filters, its update and our record of
the step run per window, in Python, at every step, so a step over thirty windows pays thirty times the
interpreter's overhead for work that is a few comparisons per row. Here a window whose task is one row
(greedy, or sampled without best-of) and whose filters are whisper's standard three is not run by
whisper's loop at all: the worker holds its state (`Decider`) and, once the decoder pass has given every
row its logits, decides all of them together (`decide`):

  filters   blank suppression at each row's own sample start, token suppression, whisper's timestamp
            rules with each row's own sample start and initial-timestamp limit (step_filters.py, proven
            bit for bit against whisper's classes);
  update    the argmax of every greedy row at once; a sampled row draws from its own seeded stream, as
            lockstep.SeededSampler draws it, so it writes the same tokens alone or beside any others;
  score     each row's running log-probability, in whisper's expression;
  record    top-k, entropy, the chosen token's rank: the step's record for the search tree, kept on the
            device until the window ends (search.RecordingDecoder builds its nodes then, as before);
  end       end-of-text, the context's end or the sample length: the one read-back of a step.

Everything that is policy stays whisper's: `DecodingTask` builds the prompt, the sample begin, the
filters and the options' checks (a window whose task holds anything else, beam search or best-of
included, runs whisper's own loop in a greenlet: continuous.py); the result is assembled as
`DecodingTask.run` assembles it (its ranker, its text, its average log-probability), and `transcribe`
still drives windows, prompts and the temperature fallback.

Beam windows keep whisper's loop: a class's analyses are greedy by default, beam search reorders and
finishes rows in ways whose batching would copy whisper's `BeamSearchDecoder` line by line, and a beam
window's rows still share the decoder pass with everyone else's (docs/performance.md, "The batched step").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from whisper.decoding import (
    ApplyTimestampRules,
    DecodingOptions,
    DecodingResult,
    DecodingTask,
    GreedyDecoder,
    SuppressBlank,
    SuppressTokens,
)
from whisper.utils import compression_ratio

from whisper_inquiry.engine.lockstep import Decoded
from whisper_inquiry.engine.repeats import end, repeating
from whisper_inquiry.engine.step_filters import TokenizerConstants, suppress_blank, suppress_tokens, timestamp_rules
from whisper_inquiry.instruments.search import RecordingDecoder, RecordingRanker

NO_LIMIT = -1  # a row without a max initial timestamp (whisper's None)


@dataclass(eq=False)
class Decider:
    """One window decided by the batched step: what whisper's `DecodingTask` would hold for it, and the
    tokens written so far."""

    task: DecodingTask  # its prompt, tokenizer, filters and options, as whisper built them
    constants: TokenizerConstants
    suppress: tuple[int, ...]  # the ids SuppressTokens blanks; () when the task has none
    blank: bool  # SuppressBlank is one of its filters
    timestamps: bool  # ApplyTimestampRules is one of its filters
    max_initial: int  # its max_initial_timestamp_index, or NO_LIMIT
    temperature: float
    generator: torch.Generator | None  # a sampled window's own stream
    recorder: RecordingDecoder
    tokens: Tensor  # (n_ctx + 1,) long: the prompt, then each token written; past `length` unused
    stop_repeating: bool  # Live's rule (repeats.py): end once the text repeats one short phrase
    sum_logprob: np.float32 = np.float32(0)  # whisper's sum_logprobs for this row, a float32 sum as there
    no_speech_prob: float = math.nan
    written: list[int] = field(default_factory=list)  # the tokens decided so far
    # each step's record, read back, with where its top-k and its tail (-1: none) start in it
    steps: list[tuple[list[float], int, int]] = field(default_factory=list, repr=False)

    @classmethod
    def of(cls, model, options: DecodingOptions, top_k: int, seed: int | None, features: Tensor,
           stop_repeating: bool = False) -> Decider | None:
        """The window's decider, or None when whisper's own loop must run it (more than one row, or a
        filter of another kind). Builds whisper's `DecodingTask`, so bad options fail as they would there."""
        task = DecodingTask(model, options)
        if task.n_group != 1 or type(task.decoder) is not GreedyDecoder:
            return None
        if features.dtype != (torch.float16 if options.fp16 else torch.float32):  # DecodingTask's own check
            raise TypeError(f"audio_features has an incorrect dtype: {features.dtype}")
        device = features.device
        suppress, blank, timestamps, max_initial = (), False, False, NO_LIMIT
        for f in task.logit_filters:
            if type(f) is SuppressBlank and f.sample_begin == task.sample_begin:
                blank = True
            elif type(f) is SuppressTokens:
                suppress = tuple(f.suppress_tokens)
            elif type(f) is ApplyTimestampRules and f.sample_begin == task.sample_begin:
                timestamps = True
                max_initial = NO_LIMIT if f.max_initial_timestamp_index is None else f.max_initial_timestamp_index
            else:
                return None
        temperature = float(options.temperature)
        generator = None
        if temperature > 0:
            generator = torch.Generator(device=device).manual_seed((seed or 0) % 2**63)
        eot = task.tokenizer.eot
        tokens = torch.full((task.n_ctx + 1,), eot, dtype=torch.long, device=device)
        tokens[: task.sample_begin] = torch.tensor(task.initial_tokens)
        recorder = RecordingDecoder(GreedyDecoder(temperature, eot), task.sample_begin, eot, top_k)
        return cls(task, TokenizerConstants.of(task.tokenizer), suppress, blank, timestamps, max_initial,
                   temperature, generator, recorder, tokens, stop_repeating)

    @property
    def length(self) -> int:
        """Tokens so far, the prompt included."""
        return self.task.sample_begin + len(self.written)

    def prompt(self) -> Tensor:
        """(1, t): what the decoder is asked about next, the whole sequence so far, as whisper's loop asks."""
        return self.tokens[None, : self.length]

    def first_logits(self, logits: Tensor) -> Tensor:
        """The first pass's logits (1, n_prompt, n_vocab): note the no-speech probability at the start of
        transcript, as `DecodingTask._main_loop` does, and return the last position's."""
        no_speech = self.task.tokenizer.no_speech
        if no_speech is not None:
            self.no_speech_prob = logits[:, self.task.sot_index].float().softmax(dim=-1)[0, no_speech].item()
        return logits[0, -1]

    def outcome(self, features: Tensor, cross_kv: dict) -> Decoded:
        """The window's result as `DecodingTask.run` assembles it, with the recording of its search."""
        task, eot = self.task, self.constants.eot
        self.recorder.record_row(list(task.initial_tokens) + self.written, self.steps)
        self.steps = []
        # GreedyDecoder.finalize appends end-of-text; DecodingTask.run keeps what precedes the first one
        tokens = [*task.initial_tokens, *self.written, eot]
        kept = tokens[task.sample_begin: tokens.index(eot)]
        sum_logprob = float(self.sum_logprob)
        ranker = RecordingRanker(task.options.length_penalty)
        ranker.rank([[torch.tensor(kept)]], [[sum_logprob]])
        text = task.tokenizer.decode(kept).strip()
        result = DecodingResult(audio_features=features[0], language=task.options.language, tokens=kept,
                                text=text, avg_logprob=sum_logprob / (len(kept) + 1),
                                no_speech_prob=self.no_speech_prob, temperature=task.options.temperature,
                                compression_ratio=compression_ratio(text))
        return Decoded(result, self.recorder, ranker.of_group(0), task.tokenizer, task.sample_begin, cross_kv)


def decide(deciders: list[Decider], logits: Tensor) -> list[bool]:
    """Every window's next token from its logits (rows, n_vocab), each row one window's last position:
    whisper's filters, update and score, and the step's record, one operation each over the rows.
    `logits` is filtered in place, as whisper's filters do. Returns which windows have ended."""
    rows, device = len(deciders), logits.device
    c = deciders[0].constants
    lengths = torch.tensor([d.length for d in deciders], device=device)
    if any(d.blank for d in deciders):
        begins = torch.tensor([d.task.sample_begin if d.blank else NO_LIMIT for d in deciders], device=device)
        suppress_blank(logits, lengths, begins, c.blank, c.eot)
    _suppress(deciders, logits)
    timed = [i for i, d in enumerate(deciders) if d.timestamps]
    known = None  # when every row has timestamps: the log-probabilities the rules computed, and where stale
    if timed:
        every = len(timed) == rows
        width = max(deciders[i].length for i in timed)
        history = torch.stack([deciders[i].tokens[:width] for i in timed])
        limits = [deciders[i].max_initial for i in timed]
        part = logits if every else logits[timed]
        _, rule_logprobs, stale = timestamp_rules(
            part, history, lengths if every else lengths[timed],
            torch.tensor([deciders[i].task.sample_begin for i in timed], device=device),
            None if all(m == NO_LIMIT for m in limits) else torch.tensor(limits, device=device),
            eot=c.eot, timestamp_begin=c.timestamp_begin, no_timestamps=c.no_timestamps)
        if every:
            known = rule_logprobs, stale
        else:
            logits[timed] = part
    # Live's rule, after whisper's filters as `decode_windows` appends it to them
    for i, d in enumerate(deciders):
        if d.stop_repeating and repeating(d.written):
            end(logits, i, c.eot)
            if known is not None:
                known[1][i] = True  # the rules' log-probabilities are stale for this row

    logprobs = _logprobs(logits, known)
    tops = {k: logprobs.topk(k) for k in sorted({d.recorder.top_k for d in deciders})}
    # the update: GreedyDecoder's argmax (the first of ties), or the window's own seeded draw
    next_tokens = _argmax(logits, tops[max(tops)])
    sampled = [i for i, d in enumerate(deciders) if d.temperature > 0]
    for i in sampled:
        d = deciders[i]
        probs = F.softmax(logits[i: i + 1].float() / d.temperature, dim=-1)  # lockstep.SeededSampler's draw
        next_tokens[i] = torch.multinomial(probs, 1, generator=d.generator)[0, 0]
    current = logprobs.gather(1, next_tokens[:, None])  # (rows, 1)

    # the record (RecordingDecoder's), packed with the tokens and scores into the step's one read-back:
    # chosen, score, entropy (bits), then per top-k asked the log-probabilities and ids, then the tail
    # -sum p log p; a suppressed token has p = 0 and log p = -inf, whose product (NaN) nansum skips
    entropy = -(logprobs.exp() * logprobs).nansum(-1) / np.log(2)
    parts = [next_tokens[:, None].to(torch.float64), current, entropy[:, None]]
    top_at: dict[int, int] = {}
    at = 3
    for k, top in tops.items():
        parts += [top.values, top.indices]
        top_at[k], at = at, at + 2 * k
    tail_at = -1
    if sampled:  # a drawn token may lie outside the top-k: its own log-probability and rank
        parts += [current, (logprobs > current).sum(-1, keepdim=True)]
        tail_at = at
    host = torch.cat([t.to(torch.float64) for t in parts], 1).cpu().tolist()

    ended = []
    for d, step in zip(deciders, host):
        token = int(step[0])
        # whisper's `sum_logprobs += current * (tokens[:, -1] != eot)`, a float32 addition (a row decided
        # here has not ended, so it multiplies by one); the record keeps the score after the step
        d.sum_logprob = np.float32(d.sum_logprob + np.float32(step[1]))
        step[1] = float(d.sum_logprob)
        d.steps.append((step, top_at[d.recorder.top_k], tail_at if d.temperature > 0 else -1))
        d.tokens[d.length] = token  # a row stops once past n_ctx tokens: the buffer holds n_ctx + 1
        d.written.append(token)
        # whisper's loop: stop at end-of-text, past the context, or after sample_len steps
        ended.append(token == c.eot or d.length > d.task.n_ctx or len(d.written) >= d.task.sample_len)
    return ended


def _argmax(logits: Tensor, top) -> Tensor:
    """Each row's argmax of `logits`, the first index of the largest (whisper's `argmax`), read off the
    record's top-k where it can be: a top log-probability strictly above the second is the logits' one
    largest too (log-softmax only subtracts the row's constant, and rounding keeps the order or makes a
    tie, never swaps). Rows with a tie there (or NaN, or a top-1) get the argmax itself."""
    if top.values.shape[1] < 2 or logits.device.type != "cpu":
        return logits.max(dim=-1).indices  # max's index is argmax's, the first of ties (test_step_filters)
    chosen = top.indices[:, 0].clone()
    tied = (~(top.values[:, 0] > top.values[:, 1])).nonzero()[:, 0]
    if len(tied):
        chosen[tied] = logits[tied].max(dim=-1).indices
    return chosen


def _logprobs(logits: Tensor, known: tuple[Tensor, Tensor] | None) -> Tensor:
    """The update's `log_softmax(logits.float())`: where the timestamp rules already computed it for the
    same logits (every row whose text they did not strip afterwards), theirs, and only the others again."""
    if known is None:
        return F.log_softmax(logits.float(), dim=-1)
    logprobs, stale = known
    if logits.device.type != "cpu":  # no read-back inside a step on a GPU: recompute and pick
        return torch.where(stale[:, None], F.log_softmax(logits.float(), dim=-1), logprobs)
    again = stale.nonzero()[:, 0]
    if len(again):
        logprobs[again] = F.log_softmax(logits[again].float(), dim=-1)
    return logprobs


def _suppress(deciders: list[Decider], logits: Tensor) -> None:
    """SuppressTokens for every row: one fill per distinct list of ids (usually one for all)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, d in enumerate(deciders):
        if d.suppress:
            groups.setdefault(d.suppress, []).append(i)
    for ids, members in groups.items():
        columns = _ids(ids, logits.device)
        if len(members) == len(deciders):
            suppress_tokens(logits, columns)
        else:
            logits[members] = suppress_tokens(logits[members], columns)


_IDS: dict[tuple, Tensor] = {}


def _ids(ids: tuple[int, ...], device: torch.device) -> Tensor:
    """The ids as a LongTensor on the device, made once per list (a step would rebuild ~90 of them)."""
    key = (ids, str(device))
    if key not in _IDS:
        if len(_IDS) > 64:
            _IDS.clear()
        _IDS[key] = torch.tensor(ids, dtype=torch.long, device=device)
    return _IDS[key]
