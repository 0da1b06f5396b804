"""Head lab, encoder lens, finder and language per window on the real bundled models."""

from __future__ import annotations

import numpy as np
import pytest
import whisper

from whisper_inquiry.audio.load import load_audio
from whisper_inquiry.audio.samples import sample_named
from whisper_inquiry.errors import OptionsError
from whisper_inquiry.experiments.encoder_lens import encoder_lens
from whisper_inquiry.experiments.finder import find_alignment_heads, words_for_heads
from whisper_inquiry.experiments.heads import ablate, edit_distance, encoder_locality, mask, sweep
from whisper_inquiry.experiments.interventions import (
    HeadRef,
    Variant,
    all_heads,
    clip_window,
    decode_variants,
    parse_heads,
)
from whisper_inquiry.experiments.language import language_per_window


@pytest.fixture(scope="module")
def plain_tokens(tiny, weather):
    """What whisper.decode itself writes for the first window, with no experiment code in the way."""
    window = clip_window(tiny, weather.samples)
    return tuple(whisper.decode(tiny, window.mel, window.options).tokens)


def test_ablating_no_head_gives_whispers_own_tokens(tiny, weather, plain_tokens):
    result = ablate(tiny, weather.samples, [])
    assert result.tokens == result.original_tokens == plain_tokens
    assert all(c.change == "same" for c in result.token_changes)
    assert [w.word for w in result.words] == [w.word for w in result.original_words]


def test_a_mask_of_1500_frames_gives_whispers_own_tokens_and_10_frames_does_not(tiny, weather, plain_tokens):
    window = clip_window(tiny, weather.samples)
    wide, narrow = decode_variants(tiny, window, [Variant(mask_k=1500), Variant(mask_k=10)])
    assert wide.tokens == plain_tokens
    assert narrow.tokens != plain_tokens


def test_mask_table_garbles_the_transcript_as_the_window_shrinks(tiny, weather):
    result = mask(tiny, weather.samples, ks=(1500, 75, 10))
    by_k = {row.k: row for row in result.rows}
    assert by_k[1500].word_error_rate == 0.0
    assert by_k[10].word_error_rate > by_k[75].word_error_rate


def test_ablating_every_alignment_head_moves_the_word_timings(tiny, weather):
    heads = [HeadRef("cross", layer, head) for layer, head in tiny.alignment_heads.to_dense().nonzero().tolist()]
    result = ablate(tiny, weather.samples, heads)
    assert result.text != result.original_text or [w.start_s for w in result.words] != [
        w.start_s for w in result.original_words]
    assert result.words and result.original_words
    starts = [w.start_s for w in result.words][:5]
    assert starts != [w.start_s for w in result.original_words][:5]
    assert any(c.change != "same" or c.prob != c.original_prob for c in result.token_changes)


def test_encoder_lens_last_layer_gives_the_original_tokens(tiny, weather):
    result = encoder_lens(tiny, weather.samples)
    assert len(result.layers) == tiny.dims.n_audio_layer
    assert result.layers[-1].tokens == result.original_tokens
    assert result.word_found[-1].all()
    assert not result.word_found[0].all()  # the first layer's output is not yet words the decoder can read


def test_finder_ranks_the_official_alignment_heads_high_on_clean_speech(tiny, weather):
    result = find_alignment_heads(tiny, weather.samples)
    n = len(result.ranking)
    official_ranks = [i for i, s in enumerate(result.ranking) if s.official]
    assert len(official_ranks) == len(result.official) == 8
    assert np.mean(official_ranks) < n / 3, official_ranks  # 8 official heads of 24, in the top third on average
    again = words_for_heads(result, result.official)
    assert [w.word for w in again] == [w.word for w in result.words]
    assert result.top3_shift_s < 0.5


def test_sweep_of_cross_attention_heads_ranks_the_biggest_change_first(tiny, weather):
    result = sweep(tiny, weather.samples, kinds=("cross",))
    assert len(result.effects) == len(all_heads(tiny, "cross")) == 24
    distances = [e.token_edit_distance for e in result.effects]
    assert distances == sorted(distances, reverse=True)
    assert distances[0] > 0  # some cross-attention head matters for this clip


def test_encoder_locality_is_a_mean_distance_per_head(tiny, weather):
    heads = encoder_locality(tiny, weather.samples)
    assert len(heads) == 24
    distances = [h.mean_distance_frames for h in heads]
    assert distances == sorted(distances) and distances[0] < distances[-1]


def test_head_lab_and_the_encoder_page_give_one_number_per_head(tiny, weather, greedy_trace):
    """Issue 25: the two pages once disagreed (116 ms against 100 ms) by defining the distance two ways."""
    from whisper_inquiry.trace.derived import head_summaries

    encoder_page = head_summaries(greedy_trace, 0).distance_ms  # from the trace's stored float16 q and k
    for h in encoder_locality(tiny, weather.samples):
        assert abs(h.mean_distance_ms - float(encoder_page[h.layer, h.head])) < 1.0  # ms


def test_head_specs_are_checked_against_the_model(tiny):
    assert parse_heads("", tiny) == ()
    assert parse_heads("cross:2.5, enc:0.1", tiny) == (HeadRef("cross", 2, 5), HeadRef("enc", 0, 1))
    for bad in ("cross:9.0", "self:0.0", "cross:1"):
        with pytest.raises(OptionsError):
            parse_heads(bad, tiny)


def test_edit_distance():
    assert edit_distance([1, 2, 3], [1, 3]) == 1 and edit_distance([], [1, 2]) == 2


def test_language_per_window_shows_a_switch_from_spanish_to_english(base, spanish):
    english = load_audio(sample_named("english_weather").path).samples
    first = np.zeros(30 * 16_000, dtype=np.float32)
    first[: len(spanish.samples)] = spanish.samples
    result = language_per_window(base, np.concatenate([first, english]))
    assert [w.language for w in result.windows] == ["es", "en"]


def test_language_per_window_refuses_an_english_only_model(tiny, weather):
    with pytest.raises(OptionsError, match="English-only"):
        language_per_window(tiny, weather.samples)
