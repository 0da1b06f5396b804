"""The batched filters and update equal whisper's own classes applied row by row, bit for bit.

Every case is random (seeded): logits with ties and -inf entries, histories with text, timestamps,
end-of-text and special tokens anywhere, prompts of every length, a max initial timestamp or none, and
rows at different positions in one padded batch. The batch goes through step_filters once; whisper's
SuppressBlank, SuppressTokens, ApplyTimestampRules and GreedyDecoder each see one row alone, at its own
length, as whisper's DecodingTask would hand it to them.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from whisper.decoding import ApplyTimestampRules, GreedyDecoder, SuppressBlank, SuppressTokens
from whisper.tokenizer import get_tokenizer

from whisper_inquiry.engine.step_filters import (
    TokenizerConstants,
    apply_timestamp_rules,
    greedy_update,
    step_record,
    suppress_blank,
    suppress_tokens,
)

TOKENIZERS = {
    "english": get_tokenizer(False),
    "multilingual": get_tokenizer(True, num_languages=99),
}
VOCAB = {"english": 51864, "multilingual": 51865}  # the models' n_vocab: the logits' width


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: the cases are small rows, and on a busy machine torch's second thread makes
    whisper's per-row reference wait (up to 0.3 s a row, measured beside another test suite)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def default_suppress(tokenizer) -> list[int]:
    """DecodingTask._get_suppress_tokens for the default suppress_tokens="-1"."""
    extra = [tokenizer.transcribe, tokenizer.translate, tokenizer.sot, tokenizer.sot_prev, tokenizer.sot_lm]
    if tokenizer.no_speech is not None:
        extra.append(tokenizer.no_speech)
    return sorted({*tokenizer.non_speech_tokens, *extra})


def random_logits(g: torch.Generator, rows: int, vocab: int, timestamp_begin: int) -> torch.Tensor:
    """float32 logits of several kinds per row: spread, integer-valued (ties everywhere), timestamps
    lifted or lowered (so the timestamp-mass rule goes both ways), some or nearly all entries -inf (so
    some rows end all -inf, whisper's NaN case)."""
    scale = torch.tensor([1.0, 3.0, 8.0])[torch.randint(0, 3, (rows, 1), generator=g)]
    logits = torch.randn(rows, vocab, generator=g).mul_(scale)
    ties = torch.rand(rows, generator=g) < 0.3
    logits[ties] = logits[ties].round_()
    logits[:, timestamp_begin:] += torch.rand(rows, 1, generator=g) * 16 - 8
    p_inf = torch.tensor([0.0, 0.0, 0.01, 0.3, 0.9995])[torch.randint(0, 5, (rows,), generator=g)]
    holed = p_inf > 0
    holes = torch.rand(int(holed.sum()), vocab, generator=g) < p_inf[holed, None]
    logits[holed] = logits[holed].masked_fill_(holes, float("-inf"))
    # one lone timestamp exactly as likely as the likeliest text token: whisper's `>` must stay `>`
    lone = (torch.rand(rows, generator=g) < 0.1).nonzero()[:, 0]
    at = torch.randint(timestamp_begin, vocab, (len(lone),), generator=g)
    best = logits[lone, :timestamp_begin].amax(1)
    logits[lone, timestamp_begin:] = float("-inf")
    logits[lone, at] = best
    return logits


def random_histories(g: torch.Generator, rows: int, vocab: int, tokenizer):
    """Padded (rows, T) histories, their lengths and sample_begins. Sampled parts are often 0, 1 or 2
    long (the rules' edge cases) and otherwise up to 40; tokens are text, timestamps (anywhere in the
    range, its two ends often, or rising in runs as a model writes them), end-of-text or specials;
    prompts hold them too, and padding is random tokens that must not matter."""
    eot, ts = tokenizer.eot, tokenizer.timestamp_begin
    sample_begin = torch.randint(1, 40, (rows,), generator=g)
    short = torch.randint(0, 3, (rows,), generator=g)
    n = torch.where(torch.rand(rows, generator=g) < 0.5, short, torch.randint(0, 41, (rows,), generator=g))
    lengths = sample_begin + n
    width = int(lengths.max()) + int(torch.randint(0, 4, (), generator=g))
    kind = torch.multinomial(torch.tensor([0.45, 0.35, 0.05, 0.05, 0.1]), rows * width, True, generator=g)
    kind = kind.view(rows, width)
    text = torch.randint(0, eot, (rows, width), generator=g)
    stamp = torch.randint(ts, vocab, (rows, width), generator=g)
    ends = torch.where(torch.rand(rows, width, generator=g) < 0.5, ts, vocab - 1)
    special = torch.randint(eot + 1, ts, (rows, width), generator=g)
    tokens = torch.where(kind == 0, text, stamp)
    tokens = torch.where(kind == 2, eot, tokens)
    tokens = torch.where(kind == 3, ends, tokens)
    tokens = torch.where(kind == 4, special, tokens)
    # some rows write timestamps that rise, with repeats, as in real transcripts
    rising = ts + torch.randint(0, 30, (rows, width), generator=g).cumsum(1).clamp_max(vocab - 1 - ts)
    monotone = (torch.rand(rows, 1, generator=g) < 0.4) & tokens.ge(ts)
    tokens = torch.where(monotone, rising, tokens)
    return tokens, lengths, sample_begin


def random_initial_limits(g: torch.Generator, rows: int) -> torch.Tensor:
    """Per row: none (-1), 0, 1, 50 (transcribe's 1 s), or anything up to past the last timestamp."""
    fixed = torch.tensor([-1, 0, 1, 50])[torch.randint(0, 4, (rows,), generator=g)]
    anything = torch.randint(0, 1700, (rows,), generator=g)
    return torch.where(torch.rand(rows, generator=g) < 0.8, fixed, anything)


def batched(logits, tokens, lengths, sample_begin, limits, c: TokenizerConstants, suppress, chain: bool):
    if chain:
        suppress_blank(logits, lengths, sample_begin, c.blank, c.eot)
        suppress_tokens(logits, suppress)
    return apply_timestamp_rules(logits, tokens, lengths, sample_begin, limits, eot=c.eot,
                                 timestamp_begin=c.timestamp_begin, no_timestamps=c.no_timestamps)


def reference(tokenizer, logits, tokens, lengths, sample_begin, limits, suppress, chain: bool):
    """whisper's filters, each row alone at its own length, in DecodingTask's order."""
    out = logits.clone()
    for r in range(logits.shape[0]):
        row, history, begin = out[r: r + 1], tokens[r: r + 1, : int(lengths[r])], int(sample_begin[r])
        limit = int(limits[r])
        filters = [SuppressBlank(tokenizer, begin), SuppressTokens(suppress)] if chain else []
        filters.append(ApplyTimestampRules(tokenizer, begin, None if limit < 0 else limit))
        for f in filters:
            f.apply(row, history)
    return out


RULES = ("at sample_begin", "max initial timestamp", "two timestamps", "a timestamp after text",
         "a lone first timestamp", "timestamp mass wins", "text wins", "all -inf (NaN)")


def rules_reached(logits, expected, tokens, lengths, sample_begin, limits, timestamp_begin) -> Counter:
    """Which of whisper's rules each row's case reaches, so the random cases are seen to cover them all."""
    ts = timestamp_begin
    last = tokens.gather(1, (lengths - 1)[:, None])[:, 0].ge(ts) & lengths.gt(sample_begin)
    previous = tokens.gather(1, (lengths - 2).clamp_min(0)[:, None])[:, 0].ge(ts) & lengths.gt(sample_begin + 1)
    at_begin = lengths.eq(sample_begin)
    text_open_before = ~logits[:, :ts].isneginf().all(1)
    text_blanked = expected[:, :ts].isneginf().all(1)
    pair_open = last & ~previous & lengths.gt(sample_begin + 1)
    counts = [at_begin, at_begin & limits.ge(0), last & previous, pair_open, last & lengths.eq(sample_begin + 1),
              text_blanked & text_open_before & ~at_begin & ~pair_open, ~text_blanked, expected.isneginf().all(1)]
    return Counter({rule: int(rows.sum()) for rule, rows in zip(RULES, counts)})


@pytest.mark.parametrize("chain", [True, False], ids=["all-filters", "timestamp-rules-alone"])
@pytest.mark.parametrize("name", list(TOKENIZERS))
def test_filters_equal_whisper_row_by_row(name, chain):
    tokenizer, vocab = TOKENIZERS[name], VOCAB[name]
    c = TokenizerConstants.of(tokenizer)
    g = torch.Generator().manual_seed(23 + 2 * list(TOKENIZERS).index(name) + chain)
    suppress = default_suppress(tokenizer)
    cases, differing, reached = 0, [], Counter()
    for batch in range(8):
        rows = 96
        logits = random_logits(g, rows, vocab, c.timestamp_begin)
        tokens, lengths, sample_begin = random_histories(g, rows, vocab, tokenizer)
        limits = random_initial_limits(g, rows)
        ids = suppress if batch % 3 else torch.randint(0, vocab, (40,), generator=g).tolist()
        expected = reference(tokenizer, logits, tokens, lengths, sample_begin, limits, ids, chain)
        got = batched(logits.clone(), tokens, lengths, sample_begin, limits, c, ids, chain)
        differing += [(batch, r) for r in range(rows) if not torch.equal(got[r], expected[r])]
        reached += rules_reached(logits, expected, tokens, lengths, sample_begin, limits, c.timestamp_begin)
        cases += rows
    assert not differing, f"{len(differing)} of {cases} rows differ from whisper's, first {differing[:5]}"
    print(cases, "cases:", dict(reached))
    assert not [rule for rule in RULES if reached[rule] < 10], reached


def test_padding_and_neighbours_do_not_leak():
    """A row's result depends on its own history only: other padding, other rows, other widths."""
    tokenizer, vocab = TOKENIZERS["multilingual"], VOCAB["multilingual"]
    c = TokenizerConstants.of(tokenizer)
    g = torch.Generator().manual_seed(5)
    logits = random_logits(g, 64, vocab, c.timestamp_begin)
    tokens, lengths, sample_begin = random_histories(g, 64, vocab, tokenizer)
    limits = random_initial_limits(g, 64)
    suppress = default_suppress(tokenizer)
    together = batched(logits.clone(), tokens, lengths, sample_begin, limits, c, suppress, chain=True)
    padded = torch.cat([tokens, torch.full((64, 7), c.timestamp_begin + 3)], 1)
    garbage = torch.where(torch.arange(padded.shape[1])[None] < lengths[:, None], padded, vocab - 1)
    assert torch.equal(batched(logits.clone(), garbage, lengths, sample_begin, limits, c, suppress, True), together)
    for r in (0, 17, 63):
        alone = batched(logits[r: r + 1].clone(), tokens[r: r + 1, : int(lengths[r])], lengths[r: r + 1],
                        sample_begin[r: r + 1], limits[r: r + 1], c, suppress, chain=True)
        assert torch.equal(alone[0], together[r])


def random_step(g: torch.Generator, rows: int, vocab: int, eot: int):
    logits = random_logits(g, rows, vocab, vocab - 1501)
    logits[:, 0] = torch.where(torch.rand(rows, generator=g) < 0.2, 1e4, logits[:, 0])  # certain rows
    finished = torch.rand(rows, generator=g) < 0.25
    history = torch.randint(0, eot, (rows, 5), generator=g)
    history[:, -1] = torch.where(finished, eot, history[:, -1])
    sum_logprobs = torch.randn(rows, generator=g) * 10
    return logits, finished, history, sum_logprobs


def test_greedy_update_at_temperature_0_equals_whisper():
    eot, vocab = TOKENIZERS["english"].eot, VOCAB["english"]
    g = torch.Generator().manual_seed(7)
    for _ in range(4):
        logits, finished, history, sum_logprobs = random_step(g, 96, vocab, eot)
        logits = logits.masked_fill(logits.isneginf().all(1, keepdim=True), 0.0)  # a decodable row
        expected_sum = sum_logprobs.clone()
        expected_tokens, expected_done = GreedyDecoder(0.0, eot).update(history, logits.clone(), expected_sum)
        got_sum = sum_logprobs.clone()
        step = greedy_update(logits.clone(), got_sum, finished, eot=eot, temperature=0.0)
        assert torch.equal(step.tokens, expected_tokens[:, -1])
        assert torch.equal(got_sum, expected_sum)
        assert bool(step.finished.all()) == bool(expected_done)
        assert torch.equal(step.finished, expected_tokens[:, -1] == eot)


def test_sampled_rows_draw_the_same_alone_batched_and_in_whisper():
    """At 0.7 each row draws from its own generator: its tokens over several steps are the same when it
    decodes alone, in a batch beside other rows (some greedy, some at 1.0), and in whisper's
    GreedyDecoder with torch's global stream seeded as the row's generator."""
    eot, vocab = TOKENIZERS["multilingual"].eot, VOCAB["multilingual"]
    g = torch.Generator().manual_seed(11)
    rows, steps = 12, 4
    seeds = [1000 + 7 * r for r in range(rows)]
    temperatures = [0.7 if r % 3 else (0.0 if r % 2 else 1.0) for r in range(rows)]
    data = [random_step(g, rows, vocab, eot) for _ in range(steps)]
    data = [(logits.masked_fill(logits.isneginf().all(1, keepdim=True), 0.0), torch.zeros(rows, dtype=torch.bool),
             history, sum_logprobs) for logits, _, history, sum_logprobs in data]

    generators = [torch.Generator().manual_seed(s) for s in seeds]
    batch_sum = torch.zeros(rows)
    batch_tokens = torch.stack([greedy_update(logits.clone(), batch_sum, finished, eot=eot, temperature=temperatures,
                                              generators=generators).tokens
                                for logits, finished, _, _ in data], 1)
    sampled = [r for r in range(rows) if temperatures[r] == 0.7]
    assert len({tuple(batch_tokens[r].tolist()) for r in sampled}) > 1
    for r in sampled:
        generator, alone_sum = torch.Generator().manual_seed(seeds[r]), torch.zeros(1)
        alone = [int(greedy_update(logits[r: r + 1].clone(), alone_sum, finished[r: r + 1], eot=eot, temperature=0.7,
                                   generators=[generator]).tokens[0]) for logits, finished, _, _ in data]
        torch.manual_seed(seeds[r])
        decoder, whisper_sum, whisper = GreedyDecoder(0.7, eot), torch.zeros(1), []
        for logits, _, history, _ in data:
            history = history[r: r + 1].clone()
            history[:, -1] = 0  # not finished
            whisper.append(int(decoder.update(history, logits[r: r + 1].clone(), whisper_sum)[0][0, -1]))
        assert alone == batch_tokens[r].tolist() == whisper, r
        assert torch.equal(alone_sum, whisper_sum) and torch.equal(batch_sum[r: r + 1], whisper_sum)


def test_step_record_equals_row_by_row():
    g = torch.Generator().manual_seed(3)
    vocab = VOCAB["english"]
    logits = random_logits(g, 64, vocab, vocab - 1501)
    logits = logits.masked_fill(logits.isneginf().all(1, keepdim=True), 0.0)
    logprobs = torch.log_softmax(logits.float(), -1)
    chosen = torch.where(torch.rand(64, generator=g) < 0.5, logprobs.argmax(-1), torch.randint(0, vocab, (64,),
                                                                                                 generator=g))
    record = step_record(logprobs, chosen, 5)
    for r in range(64):
        lp = logprobs[r]
        top = lp.topk(5)
        assert torch.equal(record.top_tokens[r], top.indices)
        assert torch.equal(record.top_probs[r], top.values.exp())
        assert int(record.chosen_rank[r]) == int((lp > lp[chosen[r]]).sum())
        assert torch.equal(record.chosen_prob[r], lp[chosen[r]].exp())
        p = lp.exp()
        entropy = -(p[p > 0] * lp[p > 0]).double().sum()
        assert abs(float(record.entropy[r]) - float(entropy)) < 1e-4 * max(1.0, float(entropy))
    assert int(record.chosen_rank[logprobs.argmax(-1) == chosen].max()) == 0
