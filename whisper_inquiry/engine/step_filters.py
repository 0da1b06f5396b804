"""whisper's logit filters and greedy update for a whole batch of rows in one pass each.

whisper's `DecodingTask` runs its filters and its decoder per window, and `ApplyTimestampRules` loops
over its rows in Python, so a step over many windows pays interpreter time per row for work that is a
few comparisons. Here every row of the step is one row of a tensor, whatever window, prompt or
position it is at: each row brings its own `sample_begin` (its prompt and sot sequence differ), its
own length (rows in flight sit at different steps; `tokens` is padded on the right and nothing past a
row's length is read), its own `max_initial_timestamp_index` and, when sampling, its own temperature
and random stream. The results are whisper's, bit for bit (tests/test_step_filters.py compares them
with whisper's own classes applied row by row); the only Python loop left is the draw of sampled rows,
one `torch.multinomial` per row, because a torch op takes a single generator.

Like whisper's filters, these write into `logits` in place (and return it, for chaining). Apply them in
whisper's order, `suppress_blank`, `suppress_tokens`, `apply_timestamp_rules`: the last one reads the
probabilities the others leave.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Categorical

NEG_INF = -math.inf


class TokenizerConstants(NamedTuple):
    """The token ids the filters need, read once from a whisper tokenizer (they differ between the
    English-only and the multilingual vocabularies, and with the number of languages)."""

    eot: int
    blank: tuple[int, ...]  # tokenizer.encode(" "): a window may not open with a blank
    no_timestamps: int | None
    timestamp_begin: int

    @classmethod
    def of(cls, tokenizer) -> TokenizerConstants:
        return cls(tokenizer.eot, tuple(tokenizer.encode(" ")), tokenizer.no_timestamps, tokenizer.timestamp_begin)


def per_row(value: Tensor | int | Sequence[int], rows: int, device: torch.device) -> Tensor:
    """A per-row LongTensor from a tensor, a list or one int shared by every row."""
    return torch.as_tensor(value, dtype=torch.long, device=device).expand(rows)


def suppress_blank(logits: Tensor, lengths: Tensor, sample_begin: Tensor | int,
                   blank_ids: Sequence[int], eot: int) -> Tensor:
    """whisper's `SuppressBlank`: a row about to write its first sampled token may not write a blank or
    end-of-text. whisper asks this of the whole batch at once (`tokens.shape[1] == sample_begin`);
    here each row is at its own position, so each row asks it of its own length."""
    rows = logits.shape[0]
    at_begin = lengths == per_row(sample_begin, rows, lengths.device)
    columns = torch.tensor([*blank_ids, eot], dtype=torch.long, device=logits.device)
    # gather, blank where due, write back: rows not at their beginning get their own values again
    logits.index_copy_(1, columns, logits.index_select(1, columns).masked_fill_(at_begin[:, None], NEG_INF))
    return logits


def suppress_tokens(logits: Tensor, suppress_ids: Sequence[int] | Tensor) -> Tensor:
    """whisper's `SuppressTokens` (the same for every row). A LongTensor of ids, made once on the
    logits' device, saves building it at every step."""
    ids = torch.as_tensor(suppress_ids, dtype=torch.long, device=logits.device)
    logits.index_fill_(1, ids, NEG_INF)
    return logits


def apply_timestamp_rules(logits: Tensor, tokens: Tensor, lengths: Tensor, sample_begin: Tensor | int,
                          max_initial_timestamp_index: Tensor | int | None, *, eot: int, timestamp_begin: int,
                          no_timestamps: int | None) -> Tensor:
    """whisper's `ApplyTimestampRules` over the batch (`timestamp_rules`, which says how); returns `logits`."""
    return timestamp_rules(logits, tokens, lengths, sample_begin, max_initial_timestamp_index, eot=eot,
                           timestamp_begin=timestamp_begin, no_timestamps=no_timestamps)[0]


def timestamp_rules(logits: Tensor, tokens: Tensor, lengths: Tensor, sample_begin: Tensor | int,
                    max_initial_timestamp_index: Tensor | int | None, *, eot: int, timestamp_begin: int,
                    no_timestamps: int | None) -> tuple[Tensor, Tensor, Tensor]:
    """whisper's `ApplyTimestampRules` (openai-whisper 20250625) over the batch, with no loop over rows.
    Returns the logits, the float32 log-probabilities its last rule read and which rows that rule then
    stripped of text: in every other row those log-probabilities are the update's own (the same
    log-softmax of the same logits), which the batched step reuses instead of computing them again.

    `tokens` is (rows, T), each row's history in its first `lengths[r]` places (prompt and sot sequence
    included, as whisper's `tokens` are) and anything after them; `sample_begin[r]` is where that row's
    sampled tokens start. `max_initial_timestamp_index[r]` below 0 means the row has none (whisper's
    None); None means no row has one. (whisper would take a negative index literally, which its
    options never produce: `max_initial_timestamp` is a duration, and 0 already means None.)

    Every rule whisper applies before its log-softmax blanks a prefix of the text tokens or one run
    of the timestamp tokens, so each row's rules come down to a few numbers per row:
      text up to `eot` after a timestamp that follows text (the pair must be closed), and up to
        `timestamp_begin` at the row's first sampled token (it must open with a timestamp);
      timestamps `[ts_from, ts_to)`: all of them after two timestamps in a row, where a timestamp that
        is the first sampled token counts as two (whisper's `len(seq) < 2`: text must follow it);
        up to and including the last timestamp sampled (no going back, no empty segment), but only
        below it when it was just written after text: it closed a segment and the next segment may
        open at the same time (whisper's `timestamp_last`); and, at the first sampled token,
        everything past the max initial timestamp.
    "Last timestamp" is the last one written, not the largest: whisper takes `timestamps[-1]`.
    The last rule then reads the filtered probabilities, in float32 as whisper does: where the
    timestamps together outweigh the likeliest text token, text is blanked.
    """
    rows, vocab = logits.shape
    device = logits.device
    lengths = lengths.to(device)
    sample_begin = per_row(sample_begin, rows, device)
    if no_timestamps is not None:
        logits[:, no_timestamps] = NEG_INF

    width = tokens.shape[1]
    tokens = tokens.to(device)
    position = torch.arange(width, device=device)
    sampled = position[None, :].ge(sample_begin[:, None]) & position[None, :].lt(lengths[:, None])
    n_sampled = sampled.sum(1)
    at = (lengths[:, None] - torch.tensor([1, 2], device=device)).clamp(0, max(width - 1, 0))
    last_two = tokens.gather(1, at) if width else torch.zeros(rows, 2, dtype=torch.long, device=device)
    last_was_timestamp = n_sampled.ge(1) & last_two[:, 0].ge(timestamp_begin)
    penultimate_was_timestamp = n_sampled.lt(2) | last_two[:, 1].ge(timestamp_begin)
    pair_open = last_was_timestamp & ~penultimate_was_timestamp

    is_timestamp = sampled & tokens.ge(timestamp_begin)
    last_at = torch.where(is_timestamp, position, -1).amax(1) if width else torch.full_like(lengths, -1)
    last_timestamp = tokens.gather(1, last_at.clamp_min(0)[:, None])[:, 0] if width else last_at
    # whisper's timestamp_last: the lone timestamp just written may repeat; any earlier one may not
    timestamp_last = torch.where(pair_open, last_timestamp, last_timestamp + 1)
    ts_to = torch.where(last_at.ge(0), timestamp_last, timestamp_begin)
    ts_to = torch.where(last_was_timestamp & penultimate_was_timestamp, vocab, ts_to)
    ts_from = torch.full_like(ts_to, timestamp_begin)

    at_begin = lengths == sample_begin  # nothing sampled yet, so none of the rules above applied
    if max_initial_timestamp_index is not None:
        limit = per_row(max_initial_timestamp_index, rows, device)
        limited = at_begin & limit.ge(0)
        ts_from = torch.where(limited, timestamp_begin + limit + 1, ts_from)
        ts_to = torch.where(limited, vocab, ts_to)

    # the text prefixes end at eot or at timestamp_begin: two fills by row, no (rows, vocab) comparison
    blank_rows(logits[:, :eot], pair_open | at_begin)
    logits[:, eot:timestamp_begin].masked_fill_(at_begin[:, None], NEG_INF)
    ts_ids = torch.arange(timestamp_begin, vocab, device=device)
    logits[:, timestamp_begin:].masked_fill_(ts_ids[None, :].ge(ts_from[:, None]) & ts_ids[None, :].lt(ts_to[:, None]),
                                             NEG_INF)

    # if sum of probability over timestamps is above any other token, sample timestamp
    logprobs = F.log_softmax(logits.float(), dim=-1)
    timestamp_logprob = logprobs[:, timestamp_begin:].logsumexp(dim=-1)
    max_text_token_logprob = logprobs[:, :timestamp_begin].amax(dim=-1)
    text_blanked = timestamp_logprob > max_text_token_logprob
    blank_rows(logits[:, :timestamp_begin], text_blanked)
    return logits, logprobs, text_blanked


def blank_rows(logits: Tensor, rows: Tensor) -> None:
    """Set the chosen rows (a bool per row) of `logits` (a view, possibly) to -inf. On a CPU only those
    rows are written (a fill by mask reads all of them: most of a step's filtering, at 30 rows); on a GPU
    the mask keeps the host from waiting to learn which rows."""
    if logits.device.type == "cpu":
        chosen = rows.nonzero()[:, 0]
        if len(chosen):
            logits[chosen] = NEG_INF
    else:
        logits.masked_fill_(rows[:, None], NEG_INF)


class GreedyStep(NamedTuple):
    tokens: Tensor  # (rows,) the token each row writes: end-of-text for rows already finished
    finished: Tensor  # (rows,) bool: the row has now written end-of-text (whisper's `completed`, per row)
    logprobs: Tensor  # (rows, vocab) float32 log-softmax of the logits, for `step_record`


def greedy_update(logits: Tensor, sum_logprobs: Tensor, finished: Tensor, *, eot: int,
                  temperature: float | Sequence[float], generators: Sequence[torch.Generator | None] | None = None,
                  ) -> GreedyStep:
    """whisper's `GreedyDecoder.update` over rows that may each decode at their own temperature.

    `finished[r]` is whisper's `tokens[r, -1] == eot`. `sum_logprobs` is added to in place, in
    whisper's own expression (a finished row adds `logprob * False`). Rows at temperature 0 take the
    argmax, all at once.

    A row above 0 draws what whisper's `Categorical(logits=logits / temperature).sample()` draws, from
    `generators[r]` (None: torch's global stream) instead of the one global stream, so a row draws the
    same tokens alone or batched with any others. torch ops take one generator, so no batched op can
    draw each row from its own: each sampled row makes its own `torch.multinomial` (and its own
    division and normalisation, which also keeps whisper's division by a Python float, a multiply by
    the reciprocal on CUDA). Finished rows draw too, as in whisper's loop, so a row's stream advances
    one draw per step whatever its state.
    """
    rows = logits.shape[0]
    temperatures = [float(temperature)] * rows if isinstance(temperature, int | float) else list(temperature)
    next_tokens = logits.max(dim=-1).indices  # argmax's index, the first of ties; on the CPU, half its time
    for r, t in enumerate(temperatures):
        if t > 0:
            probs = Categorical(logits=logits[r: r + 1] / t, validate_args=False).probs
            generator = generators[r] if generators is not None else None
            next_tokens[r] = torch.multinomial(probs, 1, True, generator=generator)[0, 0]

    logprobs = F.log_softmax(logits.float(), dim=-1)
    current_logprobs = logprobs.gather(1, next_tokens[:, None])[:, 0]
    sum_logprobs += current_logprobs * ~finished
    next_tokens = torch.where(finished, eot, next_tokens)
    return GreedyStep(next_tokens, next_tokens == eot, logprobs)


class StepRecord(NamedTuple):
    top_tokens: Tensor  # (rows, k)
    top_probs: Tensor  # (rows, k) float32
    chosen_prob: Tensor  # (rows,) float32
    chosen_rank: Tensor  # (rows,) long: how many tokens were strictly likelier than the one chosen (0: the top)
    entropy: Tensor  # (rows,) float32, nats


def step_record(logprobs: Tensor, chosen: Tensor, k: int) -> StepRecord:
    """What a Trace keeps of each row's step, from the float32 log-probabilities the update computed
    (`GreedyStep.logprobs`; for raw logits, `F.log_softmax(logits.float(), -1)`), left on the device so
    nothing waits for a read-back. A sampled token may lie outside the top-k, so its own probability
    and rank are kept too."""
    top = logprobs.topk(k, dim=-1)
    chosen_logprob = logprobs.gather(1, chosen[:, None])
    p = logprobs.exp()
    # -sum p log p; a suppressed token has p = 0 and log p = -inf, so clamp to keep 0 * -inf out
    entropy = -(p * logprobs.clamp_min(-1e30)).sum(-1)
    return StepRecord(top.indices, top.values.exp(), chosen_logprob[:, 0].exp(),
                      logprobs.gt(chosen_logprob).sum(-1), entropy)
