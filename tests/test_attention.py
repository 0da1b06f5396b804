"""Encoder and cross-attention in the trace are the attention whisper computes."""

import numpy as np
import pytest
import torch
from whisper.model import disable_sdpa

from whisper_inquiry.analyze import analyze
from whisper_inquiry.instruments.attention import content_positions, recompute_head
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.trace.derived import SUMMARIES, full_head, head_summaries, trace_nbytes


def test_on_demand_head_equals_whispers_own_attention_weights(tiny, greedy_trace):
    window = greedy_trace.windows[0]
    captured = {}
    block = tiny.encoder.blocks[2].attn

    def keep(module, inputs, output):
        captured["qk"] = output[1]  # (batch, n_head, n_ctx, n_ctx) scores, only without SDPA

    handle = block.register_forward_hook(keep)
    try:
        with torch.no_grad(), disable_sdpa():
            tiny.encoder(torch.from_numpy(window.mel)[None])
    finally:
        handle.remove()
    expected = captured["qk"][0, 3].softmax(-1).numpy()  # layer 2, head 3
    head = full_head(greedy_trace, 0, 2, 3)
    assert head.shape == (1500, 1500)
    assert np.allclose(head.sum(-1), 1, atol=1e-4)
    assert np.abs(head - expected).max() < 2e-3  # fp16 storage of q and k


def test_thumbnails_and_summaries_cover_every_layer_and_head(greedy_trace):
    enc = head_summaries(greedy_trace, 0)
    assert enc.pooled.shape == (4, 6, 100, 100)
    assert np.allclose(enc.pooled.astype(np.float32).sum(-1), 1, atol=2e-2)
    assert enc.entropy_bits.shape == (4, 6) and (enc.entropy_bits > 0).all()
    assert (enc.entropy_bits <= np.log2(1500) + 1e-3).all()
    assert enc.distance_ms.shape == (4, 6) and (enc.distance_ms >= 0).all() and (enc.distance_ms < 30_000).all()
    # the on-demand head agrees with its thumbnail
    full = full_head(greedy_trace, 0, 1, 0)
    pooled = full.reshape(100, 15, 100, 15).sum(3).mean(1)
    assert np.abs(pooled - enc.pooled[1, 0].astype(np.float32)).max() < 2e-3


def test_cross_attention_rows_sum_to_one_per_generated_token(greedy_trace):
    final = greedy_trace.windows[0].final
    cross = final.cross
    assert cross.weights.shape[:3] == (4, 6, len(final.steps))
    assert cross.token_ids == [s.id for s in final.steps]
    assert np.allclose(cross.weights.astype(np.float32).sum(-1), 1, atol=1e-2)
    assert cross.alignment_heads and all(0 <= layer < 4 for layer, _ in cross.alignment_heads)


def test_cross_attention_equals_whispers_own_weights_for_the_same_tokens(tiny, greedy_trace):
    final = greedy_trace.windows[0].final
    prompt = [p.id for p in final.prompt]
    tokens = prompt + [s.id for s in final.steps]  # the decoder's whole context, end-of-text last
    scores = []
    handles = [b.cross_attn.register_forward_hook(lambda m, i, out: scores.append(out[1]))  # qk, only without SDPA
               for b in tiny.decoder.blocks]
    try:
        with torch.no_grad(), disable_sdpa():
            tiny.decoder(torch.tensor([tokens[:-1]]), tiny.encoder(torch.from_numpy(greedy_trace.windows[0].mel)[None]))
    finally:
        for handle in handles:
            handle.remove()
    rows = slice(len(prompt) - 1, len(tokens) - 1)  # the rows that predict each generated token
    weights = torch.stack([s[0, :, rows].float().softmax(-1) for s in scores])  # (n_layer, n_head, n_tokens, 1500)
    n_layer, n_head, n_tokens, n_ctx = weights.shape
    pool = final.cross.pool
    expected = weights.reshape(n_layer, n_head, n_tokens, n_ctx // pool, pool).sum(-1).numpy()
    assert final.cross.weights.shape == expected.shape
    assert np.abs(final.cross.weights.astype(np.float32) - expected).max() < 2e-3


def test_stem_activations_and_mel_are_what_the_encoder_saw(greedy_trace, tiny):
    window = greedy_trace.windows[0]
    assert window.mel.shape == (80, 3000) and window.mel.dtype == np.float32
    assert window.conv1.stats.shape == [384, 3000] and window.conv2.stats.shape == [384, 1500]
    assert window.encoder_input.stats.shape == [384, 1500]
    with torch.no_grad():
        conv1 = torch.nn.functional.gelu(tiny.encoder.conv1(torch.from_numpy(window.mel)[None]))[0]
    assert abs(window.conv1.stats.mean - float(conv1.mean())) < 1e-4
    assert window.conv1.display.shape[0] <= 64 and window.conv1.display.shape[1] <= 300


def test_trace_memory_for_one_window_is_within_budget(greedy_trace):
    assert trace_nbytes(greedy_trace) < 16e6


def test_over_budget_traces_keep_summaries_and_recompute_heads_with_the_model(tiny, weather, greedy_trace):
    trace = analyze(tiny, weather, AnalysisOptions(qk_budget_mb=0, fallback=False))
    enc = trace.windows[0].encoder
    assert enc.qk is None and enc.summaries is not None  # computed during the run, nothing to defer
    assert head_summaries(trace, 0) is enc.summaries
    with pytest.raises(LookupError):
        full_head(trace, 0, 0, 0)
    head = recompute_head(tiny, trace.windows[0].mel, 2, 3)
    assert np.allclose(head.sum(-1), 1, atol=1e-4)
    full = head.reshape(100, 15, 100, 15).sum(3).mean(1)
    assert np.abs(full - enc.summaries.pooled[2, 3].astype(np.float32)).max() < 2e-3
    # the same numbers as the deferred summaries of a trace that kept q and k (fp16 storage aside)
    deferred = head_summaries(greedy_trace, 0)
    assert np.abs(deferred.entropy_bits - enc.summaries.entropy_bits).max() < 0.02
    assert np.abs(deferred.distance_ms - enc.summaries.distance_ms).max() < 5


def test_summaries_are_computed_once_cached_outside_the_trace_and_shared_by_a_loaded_copy(greedy_trace, tmp_path):
    from whisper_inquiry.trace.serialize import load_trace, save_trace

    first = head_summaries(greedy_trace, 0)
    assert head_summaries(greedy_trace, 0) is first
    assert greedy_trace.windows[0].encoder.summaries is None  # the frozen trace was not written to
    save_trace(greedy_trace, tmp_path / "t.npz")
    loaded = load_trace(tmp_path / "t.npz")
    assert head_summaries(loaded, 0) is first  # keyed by content, not by object identity
    assert len(SUMMARIES) <= SUMMARIES.capacity


def test_the_bounded_cache_keeps_the_most_recently_used_and_drops_the_oldest():
    from whisper_inquiry.trace.derived import BoundedCache

    cache = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent, so "b" is the one to go
    assert cache.get_or_compute("c", lambda: 3) == 3
    assert cache.get("b") is None and cache.get("a") == 1 and len(cache) == 2
    assert cache.get_or_compute("a", lambda: pytest.fail("a kept value is not computed again")) == 1


def test_entropy_and_distance_average_over_the_audios_own_frames_not_the_padding(greedy_trace):
    window = greedy_trace.windows[0]
    n = content_positions(window.content_s)
    assert 400 < n < 1500  # the 9 s clip fills less than a third of the window
    head = full_head(greedy_trace, 0, 3, 1).astype(np.float64)  # (1500, 1500)
    rows = head[:n]
    entropy = -(rows * np.log2(np.clip(rows, 1e-30, None))).sum(-1).mean()
    idx = np.arange(1500)
    distance_ms = (rows * np.abs(idx[:n, None] - idx[None, :])).sum(-1).mean() * 20
    summaries = head_summaries(greedy_trace, 0)
    assert abs(summaries.entropy_bits[3, 1] - entropy) < 0.01
    assert abs(summaries.distance_ms[3, 1] - distance_ms) < 2
    entropy_all = -(head * np.log2(np.clip(head, 1e-30, None))).sum(-1).mean()
    assert abs(entropy_all - entropy) > 0.05  # averaging the padding's rows too would have moved it
