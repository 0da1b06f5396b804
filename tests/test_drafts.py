"""A Live refresh with the last refresh's tokens as its draft: fewer decoder passes, the same tokens."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch
from together import in_flight_together

from whisper_inquiry.audio.load import load_audio
from whisper_inquiry.audio.samples import sample_named
from whisper_inquiry.engine.core import Engine
from whisper_inquiry.engine.drafts import chunked_self_attention, continuation
from whisper_inquiry.engine.worker import BUSY_WINDOWS
from whisper_inquiry.instruments.live import Heard, listen, next_draft

FLOAT_TOLERANCE = 1e-4  # measured: a drafted and a plain decode's token probabilities differ by about 6e-6 at most


def test_continuation_follows_the_draft_from_where_the_text_has_got_to():
    draft = [10, 11, 12, 13, 14, 15]
    assert continuation(draft, []) == draft  # nothing written yet: the whole draft
    assert continuation(draft, [10, 11]) == [12, 13, 14, 15]
    assert continuation(draft, [7, 8, 12, 13]) == [14, 15]  # the window slid: its front is new
    assert continuation(draft, [99, 13]) == [14, 15]  # the longest tail the draft holds wins
    assert continuation(draft, [99]) == []  # nothing of it in the draft: no guess


def test_next_draft_is_the_newest_transcript_unless_it_wrote_next_to_nothing():
    def heard(tokens):
        return Heard("", [], np.zeros((80, 0), np.float32), 0.0, tuple(tokens))

    draft = tuple(range(40))
    assert next_draft(draft, heard(range(5, 50))) == tuple(range(5, 50))
    assert next_draft(draft, heard([7])) == draft  # one token where there were 40: keep the 40
    assert next_draft((), heard([7])) == (7,)


@pytest.fixture(scope="module")
def engine(tiny) -> Engine:
    return Engine(tiny, warm_up=False)


@pytest.fixture(scope="module")
def stream():
    """45 s of speech as a microphone would give it: three clips, one after another."""
    clips = [load_audio(sample_named(n).path).samples for n in ("english_story", "english_weather", "english_numbers")]
    return np.concatenate(clips)


def _window(stream, end_s: float) -> np.ndarray:
    """What a microphone's buffer holds at `end_s`: the newest 30 s."""
    return stream[max(0, int((end_s - 30) * 16000)):int(end_s * 16000)]


def _heard_at(tiny, stream, end_s: float, draft=()):
    return listen(tiny, _window(stream, end_s), draft=draft)


def _same(a, b) -> None:
    assert a.tokens == b.tokens and a.text == b.text
    assert [s.id for s in a.steps] == [s.id for s in b.steps]
    for x, y in zip(a.steps, b.steps):
        assert abs(x.logprob - y.logprob) < FLOAT_TOLERANCE
        assert [alt.id for alt in x.alternatives] == [alt.id for alt in y.alternatives]
    assert abs(a.no_speech_prob - b.no_speech_prob) < FLOAT_TOLERANCE


@pytest.mark.slow
def test_a_draft_changes_the_passes_not_the_tokens(tiny, stream):
    # refreshes 1.5 s apart as the buffer grows to 30 s and then slides (its front drops words)
    ends = [22.0, 23.5, 25.0, 28.0, 29.5, 31.0, 32.5, 38.5, 40.0]
    previous = _heard_at(tiny, stream, ends[0])
    passes = tokens = 0
    for end_s in ends[1:]:
        drafted = _heard_at(tiny, stream, end_s, draft=previous.tokens)
        plain = _heard_at(tiny, stream, end_s)
        _same(plain, drafted)
        assert drafted.passes is not None and plain.passes is None
        passes, tokens = passes + drafted.passes, tokens + len(drafted.tokens) + 1  # + end of text
        previous = drafted
    assert tokens > 300
    assert passes < tokens / 3, (passes, tokens)  # measured: about one pass for every six tokens


def test_a_wrong_draft_costs_passes_but_never_changes_a_token(tiny, stream, weather):
    plain = listen(tiny, weather.samples)
    numbers = listen(tiny, load_audio(sample_named("english_numbers").path).samples)
    for draft in (numbers.tokens, tuple(range(1000, 1100)), (plain.tokens[0],) * 50):
        _same(plain, listen(tiny, weather.samples, draft=draft))
    other_model = (plain.tokens[0], 51_864 + 5)  # ids past tiny.en's vocabulary: ignored, not an error
    ignored = listen(tiny, weather.samples, draft=other_model)
    _same(plain, ignored)
    assert ignored.passes is None


def test_engine_decodes_a_drafted_listen_with_the_same_words(engine, tiny, weather):
    plain = listen(tiny, weather.samples)
    heard = engine.listen(weather.samples, draft=plain.tokens)
    _same(plain, heard)
    assert heard.passes == 1  # the same audio again: the whole draft is right, checked in one pass


@pytest.mark.slow
def test_drafted_listeners_as_rows_share_passes_and_each_hears_its_own(tiny, stream):
    """With `drafted_rows` (off by default: worker.Worker says why), three listeners whose windows
    slid since their last refresh (drafts partly wrong, so each rejects tokens at its own steps) decode
    in the engine's shared passes, rows advancing at their own pace: each hears what it hears alone, in
    fewer passes than tokens."""
    ends = [(24.0, 25.5), (31.0, 32.5), (38.5, 40.0)]
    drafts = [_heard_at(tiny, stream, before).tokens for before, _ in ends]
    engine = Engine(tiny, warm_up=False, drafted_rows=True)
    heard: list = [None] * 3
    before = dict(engine.batch_sizes)
    in_flight_together(engine.worker, [lambda i=i: heard.__setitem__(i, engine.listen(
        _window(stream, ends[i][1]), draft=drafts[i])) for i in range(3)])
    assert engine.batch_sizes.get(3, 0) == before.get(3, 0) + 3  # all three in one pass at least once
    for (_, end_s), h in zip(ends, heard):
        _same(_heard_at(tiny, stream, end_s), h)
        assert h.passes < len(h.tokens) / 2, (h.passes, len(h.tokens))


@pytest.mark.slow
def test_a_stream_of_drafted_refreshes_never_starves_a_window_in_flight(engine, tiny, stream):
    """Drafted refreshes decode alone, between two steps of the rows in flight, and the time each takes
    is owed to the rows, which step until it is repaid. A listener refreshing back to back (each next
    refresh queued just after the last one ended) must not hold up another listener's first refresh (a
    row, about 60 steps): before, the rows got one step per drafted refresh, and such a row waited out
    some 60 of them (measured in bench/live.py: 40 s)."""
    window = _window(stream, 40.0)
    draft = listen(tiny, window).tokens
    stop, refreshes = threading.Event(), []

    def keep_refreshing() -> None:
        while not stop.is_set() and len(refreshes) < 60:
            refreshes.append(engine.listen(window, draft=draft).passes)

    listener = threading.Thread(target=keep_refreshing)
    listener.start()
    while len(refreshes) < 2:  # it is refreshing
        stop.wait(0.05)
    before = len(refreshes)
    first = engine.listen(_window(stream, 25.0))  # no draft: a row of the continuous batch
    during = len(refreshes) - before
    stop.set()
    listener.join()
    _same(_heard_at(tiny, stream, 25.0), first)
    assert len(first.tokens) > 40
    # beside one window (fewer than BUSY_WINDOWS) each refresh kept its draft, decoded alone between two steps
    drafted = [p for p in refreshes if p is not None]
    assert BUSY_WINDOWS > 1 and len(drafted) == len(refreshes)
    assert max(drafted) <= len(draft) // 16 + 2  # each checked its right draft 16 tokens a pass: cheap
    assert during < 12, f"{during} drafted refreshes ran while one window waited"


def test_a_chunk_after_cached_positions_sees_what_one_position_at_a_time_sees(tiny, weather):
    import whisper

    mel = whisper.pad_or_trim(whisper.log_mel_spectrogram(torch.from_numpy(weather.samples)), 3000)
    tokens = torch.tensor([[50257, 50362, 383, 6193, 1909, 318, 27737, 13]])
    with torch.no_grad():
        features = tiny.encoder(mel[None])
        cache, hooks = tiny.install_kv_cache_hooks()
        steps = [tiny.decoder(tokens[:, :3], features, kv_cache=cache)[:, -1]]
        steps += [tiny.decoder(tokens[:, i:i + 1], features, kv_cache=cache)[:, -1] for i in range(3, 8)]
        for h in hooks:
            h.remove()
        cache, hooks = tiny.install_kv_cache_hooks()
        tiny.decoder(tokens[:, :3], features, kv_cache=cache)
        with chunked_self_attention(tiny):
            chunk = tiny.decoder(tokens[:, 3:], features, kv_cache=cache)  # five positions after three cached
        for h in hooks:
            h.remove()
    stepwise = torch.stack(steps[1:], dim=1)
    assert (chunk - stepwise).abs().max() < 1e-3
    assert torch.equal(chunk.argmax(-1), stepwise.argmax(-1))
    assert all("qkv_attention" not in block.attn.__dict__ for block in tiny.decoder.blocks)  # restored


def _beside(engine: Engine, stream, others: int, listen: Callable[[], object]) -> object:
    """`listen()` once `others` other listeners' windows are in the engine (queued or decoding)."""
    threads = [threading.Thread(target=engine.listen, args=(_window(stream, 25.0 - i),))
               for i in range(others)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120  # only ends a hang
    while engine.worker.waiting() < others and time.monotonic() < deadline:
        time.sleep(0.005)
    try:
        return listen()
    finally:
        for t in threads:
            t.join()


def test_a_drafted_refresh_beside_other_windows_joins_them_without_its_draft(tiny, stream):
    """Alone, or beside fewer than `BUSY_WINDOWS` other windows, a refresh checks its draft in a few
    passes between two steps; beside more it joins the batched step as a plain row instead, hearing the
    same words (a draft never changes a token)."""
    window = _window(stream, 32.5)
    draft = _heard_at(tiny, stream, 31.0).tokens
    engine = Engine(tiny, warm_up=False)
    alone = engine.listen(window, draft=draft)
    assert alone.passes is not None
    few = _beside(engine, stream, BUSY_WINDOWS - 1, lambda: engine.listen(window, draft=draft))
    assert few.passes is not None  # its draft kept: decoded alone, between two steps
    _same(alone, few)
    busy = _beside(engine, stream, BUSY_WINDOWS, lambda: engine.listen(window, draft=draft))
    assert busy.passes is None  # it decoded beside the others, as a row of the batched step
    _same(alone, busy)
    assert engine.worker.stats.deciders["batched step"] >= BUSY_WINDOWS + 1
    kept = Engine(tiny, warm_up=False, draft_when_busy=True)  # the draft always kept, decoded alone
    busy = _beside(kept, stream, BUSY_WINDOWS, lambda: kept.listen(window, draft=draft))
    assert busy.passes is not None
    _same(alone, busy)
    engine.close(60)
    kept.close(60)
