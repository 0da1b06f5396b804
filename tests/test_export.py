import re

from whisper_inquiry.trace.export import segment_steps, to_json, to_srt, to_txt, to_vtt


def test_srt_parses_into_the_segments(greedy_trace):
    srt = to_srt(greedy_trace)
    blocks = [b.splitlines() for b in srt.strip().split("\n\n")]
    assert len(blocks) == len(greedy_trace.segments)
    for i, (block, seg) in enumerate(zip(blocks, greedy_trace.segments), 1):
        assert block[0] == str(i)
        assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", block[1])
        assert block[2] == seg.text.strip()


def test_vtt_has_a_header_cues_and_word_timestamps(greedy_trace):
    vtt = to_vtt(greedy_trace)
    assert vtt.startswith("WEBVTT\n\n")
    cues = re.findall(r"(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n(.+)", vtt)
    assert len(cues) == len(greedy_trace.segments)
    assert "<00:00:0" in cues[0][2] and "weather" in cues[0][2]


def test_json_tokens_follow_the_segments(greedy_trace):
    doc = to_json(greedy_trace)
    steps = segment_steps(greedy_trace)
    assert [len(s) for s in steps] == [len(seg.tokens) for seg in greedy_trace.segments]
    assert doc["segments"][0]["tokens"][0]["id"] == greedy_trace.segments[0].tokens[0]
    assert to_txt(greedy_trace).strip() == greedy_trace.text.strip()
