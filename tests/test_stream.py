"""Streaming on the real tiny.en: timed live looks, and bundled clips replayed as streams under both policies."""

from __future__ import annotations

import numpy as np
import pytest

from whisper_inquiry.audio.load import load_audio
from whisper_inquiry.audio.samples import sample_named
from whisper_inquiry.corpus.score import score
from whisper_inquiry.instruments.live import listen
from whisper_inquiry.streaming.policy import AlignAtt, LocalAgreement
from whisper_inquiry.streaming.stream import StreamOptions, replay


@pytest.fixture(scope="module")
def greedy_story(tiny):
    """The offline transcript of the story: whisper.transcribe on the whole clip."""
    import whisper

    story = load_audio(sample_named("english_story").path)
    return whisper.transcribe(tiny, story.samples, language="en", fp16=False)["text"]


def _listen(model):
    return lambda samples, prompt, draft: listen(model, samples, draft=draft, timed=True, prompt=prompt)


def test_a_timed_look_gives_whisper_word_times_and_where_each_token_attends(tiny, weather, greedy_trace):
    heard = listen(tiny, weather.samples, timed=True)
    assert "".join(w.word for w in heard.words).strip() == heard.text  # the words spell the transcript
    starts = [w.start_s for w in heard.words]
    assert starts == sorted(starts) and 0 <= starts[0] and heard.words[-1].end_s <= weather.duration_s + 0.05
    analysed = [w for w in greedy_trace.words]
    # the analysis's words (it decodes with timestamps, and puts one more full stop), at much the same times
    assert [w.word.strip(" .") for w in heard.words] == [w.word.strip(" .") for w in analysed]
    shifts = [abs(a.start_s - b.start_s) for a, b in zip(heard.words, analysed)]
    assert np.median(shifts) < 0.1 and max(shifts) < 0.5
    assert len(heard.attended_s) == len(heard.steps) and len(heard.word_attended_s) == len(heard.words)
    # a word's tokens attend to audio near where the word is said (within a second)
    near = [abs(a - (w.start_s + w.end_s) / 2) < 1.0 for w, a in zip(heard.words, heard.word_attended_s)]
    assert sum(near) >= 0.8 * len(near)


def test_the_story_streamed_with_local_agreement_commits_the_offline_transcript_in_order(tiny, greedy_story):
    story = load_audio(sample_named("english_story").path)
    result = replay(_listen(tiny), story.samples, StreamOptions(LocalAgreement(2), chunk_s=1.0))
    assert len(result.updates) == 25 and result.updates[-1].final
    assert score(greedy_story, result.text, "en").wer <= 0.10  # the target, on its setting
    assert any(u.trimmed_to_s for u in result.updates)  # past 15 s the buffer was cut at a sentence's end
    trimmed = next(u for u in result.updates if u.trimmed_to_s)
    cut_after = [c for c in result.committed if abs(c.heard_s - trimmed.trimmed_to_s) < 1e-6]
    assert cut_after and cut_after[0].committed_s <= trimmed.time_s  # where a word committed by then ended,
    assert cut_after[0].word.strip()[-1] in ".?!"  # the end of a sentence
    lags = result.lags_s()
    assert (lags >= 0).all() and np.median(lags) <= 3.0
    committed_at = [c.committed_s for c in result.committed]
    assert committed_at == sorted(committed_at)


def test_alignatt_replay_is_the_same_every_time_and_commits_earlier_than_the_end(tiny, weather, greedy_trace):
    options = StreamOptions(AlignAtt(25), chunk_s=2.0)
    first, second = (replay(_listen(tiny), weather.samples, options) for _ in range(2))
    strip = [{k: v for k, v in u.items() if k != "decode_s"} for u in first.to_json()["updates"]]
    assert strip == [{k: v for k, v in u.items() if k != "decode_s"} for u in second.to_json()["updates"]]
    assert score(greedy_trace.text, first.text, "en").wer <= 0.15
    before_end = [c for c in first.committed if c.committed_s < first.duration_s]
    assert len(before_end) >= len(first.committed) // 2  # most words are out before the clip ends


def test_a_replay_of_silence_commits_nothing(tiny):
    silence = load_audio(sample_named("silence").path)
    result = replay(_listen(tiny), silence.samples, StreamOptions(chunk_s=1.0))
    assert len(result.updates) == 5 and result.committed == [] and result.lag_summary() is None
