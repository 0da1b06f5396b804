"""The streaming policies and the stream's buffer, with no model: hypotheses written by hand, a listener
that reads words off a script (named so: no Whisper in this module)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from whisper_inquiry.errors import InquiryError
from whisper_inquiry.streaming.policy import (
    Agreement,
    AlignAtt,
    CommittedWord,
    LocalAgreement,
    StreamWord,
    policy_from,
)
from whisper_inquiry.streaming.stream import MAX_BUFFER_S, Streamer, StreamOptions, replay
from whisper_inquiry.trace.schema import SAMPLE_RATE, Word


def words(text: str, start: float = 0.0, step: float = 0.5, attended: list[float] | None = None) -> list[StreamWord]:
    out = []
    for i, w in enumerate(text.split()):
        a = None if attended is None else attended[i]
        out.append(StreamWord(" " + w, start + i * step, start + (i + 1) * step, a))
    return out


def text(committed) -> str:
    return "".join(w.word for w in committed).strip()


def test_local_agreement_2_commits_the_prefix_two_updates_share():
    a = Agreement(LocalAgreement(2))
    assert a.update(words("the cat"), 1.0) == []  # one update agrees with nothing yet
    assert text(a.update(words("the cat sat on"), 2.0)) == "the cat"
    assert text(a.tentative) == "sat on"
    assert text(a.update(words("the cat sat in the"), 3.0)) == "sat"  # "on" flipped to "in": not agreed
    assert [w.committed_s for w in a.committed] == [2.0, 2.0, 3.0]
    assert a.committed[0].heard_s == 0.5 and a.committed[0].lag_s == 1.5


def test_local_agreement_3_waits_for_a_third_agreeing_update():
    a = Agreement(LocalAgreement(3))
    a.update(words("one two"), 1.0)
    assert a.update(words("one two three"), 2.0) == []
    assert text(a.update(words("one two three four"), 3.0)) == "one two"
    assert text(a.update(words("one two three four"), 4.0)) == "three"  # the 2nd update's tail: only "three"


def test_local_agreement_1_commits_every_hypothesis_at_once():
    a = Agreement(LocalAgreement(1))
    assert text(a.update(words("a b c"), 1.0)) == "a b c"


def test_committed_words_heard_again_are_not_committed_twice():
    a = Agreement(LocalAgreement(2))
    a.update(words("hello there"), 1.0)
    a.update(words("hello there friend"), 2.0)
    # the next look hears the committed words again, with slightly different times: they are dropped
    shifted = [StreamWord(w.word, w.start_s + 0.05, w.end_s + 0.05) for w in words("hello there friend ok")]
    a.update(shifted, 3.0)
    assert text(a.committed) == "hello there friend"
    assert text(a.tentative) == "ok"


def test_a_repeated_tail_word_after_the_committed_end_is_dropped():
    a = Agreement(LocalAgreement(1))
    a.update(words("we went home"), 2.0)  # "home" ends at 1.5
    again = [StreamWord(" home", 1.55, 1.9), StreamWord(" today", 1.9, 2.4)]  # heard again just after
    assert text(a.update(again, 3.0)) == "today"


def test_alignatt_commits_words_whose_attention_stays_clear_of_the_end():
    a = Agreement(AlignAtt(frames=25))  # 0.5 s
    hyp = words("the rain in spain", attended=[0.3, 0.8, 1.3, 1.7])
    assert text(a.update(hyp, 2.0)) == "the rain in"  # "spain" attends to 1.7 >= 2.0 - 0.5
    assert text(a.tentative) == "spain"
    assert text(a.update(hyp, 2.3)) == "spain"


def test_alignatt_stops_at_the_first_word_near_the_end_even_if_later_ones_are_clear():
    a = Agreement(AlignAtt(frames=10))
    assert text(a.update(words("a b c", attended=[0.1, 1.9, 0.2]), 2.0)) == "a"


def test_finish_commits_the_last_hypothesis_whole():
    a = Agreement(LocalAgreement(2))
    a.update(words("good night"), 1.0)
    assert text(a.finish(words("good night moon"), 1.4)) == "good night moon"
    assert all(w.committed_s == 1.4 for w in a.committed)


def test_bad_policy_settings_are_refused_in_one_line():
    for make in (lambda: LocalAgreement(0), lambda: AlignAtt(-1), lambda: policy_from("vad"),
                 lambda: StreamOptions(chunk_s=0), lambda: StreamOptions(trim_s=40)):
        with pytest.raises(InquiryError) as err:
            make()
        assert "\n" not in str(err.value)


# -- the stream, with a listener reading a script (no model) ---------------------------------------------


class ScriptedListener:
    """Hears one word per second of speech in the buffer it is given (a stand-in for Whisper: no model)."""

    def __init__(self, silent: bool = False, speech_from_s: float = 0.0):
        self.silent = silent
        self.speech_from_s = speech_from_s  # silence before this moment of the stream
        self.buffers: list[float] = []
        self.prompts: list[str] = []
        self.stream_start_s = 0.0  # set by the test from the streamer, to name words by stream time

    def __call__(self, samples, prompt, draft):
        seconds = len(samples) / SAMPLE_RATE
        self.buffers.append(seconds)
        self.prompts.append(prompt)
        if self.silent:
            return SimpleNamespace(words=(), word_attended_s=(), tokens=(), repeating=False)
        heard = []
        start = self.stream_start_s
        for k in range(int(np.ceil(start - 1e-9)), int(start + seconds) + 1):  # word k spans [k, k + 0.8] s
            if k + 0.8 <= start + seconds + 1e-9 and k >= self.speech_from_s:
                heard.append(Word(f" w{k}" + ("." if k % 5 == 4 else ""), k - start, k + 0.8 - start, 0.9))
        return SimpleNamespace(words=tuple(heard), word_attended_s=tuple(w.end_s for w in heard), tokens=(1, 2),
                               repeating=False)


def scripted_replay(seconds: float, listener: ScriptedListener, **options) -> tuple:
    streamer_holder = {}

    def listen(samples, prompt, draft):
        listener.stream_start_s = streamer_holder["s"].buffer_start_s
        return listener(samples, prompt, draft)

    streamer = Streamer(listen, StreamOptions(**options), keep_updates=50)
    streamer_holder["s"] = streamer
    audio = np.zeros(int(seconds * SAMPLE_RATE), np.float32)
    step = round(streamer.options.chunk_s * SAMPLE_RATE)
    for i in range(0, len(audio), step):
        streamer.feed(audio[i: i + step])
        if streamer.due():
            streamer.update()
    streamer.finish()
    return streamer, listener


def test_a_stream_past_ten_minutes_keeps_its_buffer_and_memory_bounded_scripted_listener():
    streamer, listener = scripted_replay(660.0, ScriptedListener())
    assert max(listener.buffers) <= 15.0 + 1.0 + 1e-6  # trimmed at sentence ends once past 15 s
    assert len(streamer.updates) == 50  # only the newest updates are kept
    committed = text(streamer.agreement.committed).split()
    assert committed == [f"w{k}" + ("." if k % 5 == 4 else "") for k in range(660)]  # each word once, in order
    assert len(streamer.agreement._in_buffer) <= 20 and len(streamer.agreement._recent) <= 2  # bounded state
    # the committed text that left the buffer is the next decode's prompt, at most 200 characters
    assert listener.prompts[-1].endswith(".") and 0 < len(listener.prompts[-1]) <= 200


def test_a_buffer_with_nothing_committed_never_grows_past_whisper_window_scripted_listener():
    streamer, listener = scripted_replay(100.0, ScriptedListener(silent=True))
    assert max(listener.buffers) <= MAX_BUFFER_S
    assert streamer.agreement.committed == []


def test_a_clip_shorter_than_a_chunk_is_one_final_update_scripted_listener():
    result = replay(ScriptedListener(), np.zeros(int(0.6 * SAMPLE_RATE), np.float32), StreamOptions(chunk_s=1.0))
    assert len(result.updates) == 1 and result.updates[0].final
    assert result.updates[0].time_s == pytest.approx(0.6)


def test_replay_updates_after_each_whole_chunk_then_once_at_the_end_scripted_listener():
    result = replay(ScriptedListener(), np.zeros(int(3.5 * SAMPLE_RATE), np.float32), StreamOptions(chunk_s=1.0))
    assert [u.time_s for u in result.updates] == [1.0, 2.0, 3.0, 3.5]
    assert [u.final for u in result.updates] == [False, False, False, True]
    doc = result.to_json()
    assert [u["time_s"] for u in doc["updates"]] == [1.0, 2.0, 3.0, 3.5]
    assert set(doc["committed"][0]) == {"word", "heard_s", "committed_s"}
    assert set(doc["updates"][-1]["committed"][0]) == {"word", "start", "end"}
    assert doc["text"] == text(result.committed)


def test_a_look_that_loops_is_retried_without_its_prompt_and_a_loop_is_never_committed_scripted_listener():
    prompts = []

    def listen(samples, prompt, draft):
        prompts.append(prompt)
        looping = len(prompts) == 1 or bool(prompt)  # the first look loops whatever; later ones only when prompted
        heard = tuple(Word(" 6", i * 0.2, i * 0.2 + 0.2, 0.9) for i in range(20)) if looping else (
            Word(" hello", 0.0, 0.5, 0.9), Word(" there.", 0.5, 1.0, 0.9))
        return SimpleNamespace(words=heard, word_attended_s=(), tokens=(1,), repeating=looping)

    streamer = Streamer(listen, StreamOptions(LocalAgreement(1)))
    streamer.feed(np.zeros(SAMPLE_RATE, np.float32))
    first = streamer.update()
    assert first.looped and first.committed == () and first.hypothesis == ()
    streamer.agreement.committed.append(CommittedWord(" Earlier.", -1.0, 0.0, -1.5))  # heard before the buffer
    streamer.feed(np.zeros(SAMPLE_RATE, np.float32))
    second = streamer.update()
    assert prompts[1:] == ["Earlier.", ""]  # the prompted look looped, so it was heard again without the prompt
    assert not second.looped and text(second.committed) == "hello there."


def test_audio_leaving_a_full_buffer_takes_its_tentative_words_with_it():
    a = Agreement(LocalAgreement(2))
    a.update(words("one two three four"), 2.0)  # nothing agreed yet: all tentative
    assert text(a.commit_before(1.0, 30.5)) == "one two"  # the words that end by 1.0 s
    assert text(a.tentative) == "three four"


def test_speech_after_a_full_buffer_of_silence_is_committed_within_seconds_scripted_listener():
    """35 s of silence fill the 30 s buffer, which then overflows at every chunk: agreement must still
    happen (it once restarted at each overflow, so nothing was committed until words fell out of the buffer)."""
    streamer, listener = scripted_replay(70.0, ScriptedListener(speech_from_s=35.0))
    committed = streamer.agreement.committed
    assert [w.word.strip(" .") for w in committed] == [f"w{k}" for k in range(35, 70)]
    assert max(w.lag_s for w in committed[:-2]) <= 3.0  # two chunks of 1 s, less the word's own length
    assert max(listener.buffers[-10:]) <= 16.0  # trimmed again once sentences are committed


def test_every_committed_word_is_told_by_one_update_overflow_included_scripted_listener():
    listener = ScriptedListener()
    listener_calls = []

    def stuttering(samples, prompt, draft):  # agrees with nothing: every look hears other words
        listener_calls.append(1)
        heard = listener(samples, prompt, draft)
        return SimpleNamespace(**{**heard.__dict__, "words": tuple(
            Word(w.word + str(len(listener_calls)), w.start_s, w.end_s, w.prob) for w in heard.words)})

    streamer = Streamer(stuttering, StreamOptions(LocalAgreement(2)))
    for _ in range(40):
        streamer.feed(np.zeros(SAMPLE_RATE, np.float32))
        streamer.update()
    streamer.finish()
    told = [w for u in streamer.updates for w in u.committed]
    assert told == streamer.agreement.committed and len(told) > 0  # the overflow's words are in an update
    assert any(u.trimmed_to_s for u in streamer.updates)  # and so is its cut
    assert max(listener.buffers) <= MAX_BUFFER_S + 1e-6
