import json
import subprocess
import sys
from pathlib import Path

from whisper_inquiry.audio.samples import sample_named

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "whisper_inquiry", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_analyze_prints_the_transcript_and_writes_json_and_trace(tmp_path):
    out, trace = tmp_path / "out.json", tmp_path / "trace.npz"
    result = _cli("analyze", str(sample_named("english_weather").path), "--beam", "3", "--json", str(out),
                  "--trace", str(trace))
    assert result.returncode == 0, result.stderr
    assert "weather today is sunny" in result.stdout
    doc = json.loads(out.read_text())
    assert {"text", "language", "model", "device", "segments", "words", "tree", "timings_ms"} <= doc.keys()
    assert doc["model"] == "tiny.en" and doc["device"] == "cpu"
    token = doc["segments"][0]["tokens"][1]
    assert {"id", "text", "prob", "logprob", "alternatives"} <= token.keys()
    assert [w["word"].strip() for w in doc["words"]][:3] == ["The", "weather", "today"]
    assert doc["tree"]["pruned"] > 0 and doc["tree"]["finished"] >= 3
    assert trace.stat().st_size > 0


def test_models_lists_the_bundled_ones():
    result = _cli("models")
    assert result.returncode == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "bundled" in lines["tiny.en"] and "bundled" in lines["base"] and "download" in lines["large-v3"]


def test_bad_input_is_one_error_line_and_status_2(tmp_path):
    image = tmp_path / "photo.wav"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    for args in (["analyze", str(image)], ["analyze", str(tmp_path / "missing.wav")],
                 ["analyze", str(sample_named("silence").path), "--model", "nonsense"]):
        result = _cli(*args)
        assert result.returncode == 2
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_corpus_from_a_zip_prints_the_table_and_writes_rows_and_the_wer(tmp_path):
    """A zip with a clip, a broken manifest line and a path that leaves the corpus: the clip runs, the other
    two rows are their one-line errors, and the hostile entry is refused and never written."""
    import zipfile

    weather = "The weather today is sunny with a light breeze. Tomorrow we expect rain in the afternoon."
    lines = [json.dumps({"audio_filepath": "weather.flac", "text": weather, "room": "a"}), "{broken",
             json.dumps({"audio_filepath": "../evil.flac", "text": "x"})]
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("manifest.jsonl", "\n".join(lines))
        z.write(sample_named("english_weather").path, "weather.flac")
        z.write(sample_named("english_weather").path, "../evil.flac")
    out = tmp_path / "out.json"
    result = _cli("corpus", str(archive), "--json", str(out), "--store", str(tmp_path / "store"))
    assert result.returncode == 0, result.stderr
    assert "refused: ../evil.flac: leaves the corpus folder" in result.stderr
    assert "corpus WER 6.2%" in result.stdout, result.stdout  # "a light" -> "light": 1 of 16 words
    doc = json.loads(out.read_text())
    good, broken, evil = doc["rows"]
    assert good["hypothesis"].startswith("The weather today") and good["room"] == "a"
    assert (good["substitutions"], good["insertions"], good["deletions"], good["wer"]) == (0, 0, 1, 0.0625)
    assert broken["error"] == "manifest.jsonl line 2 is not valid JSON: Expecting property name enclosed in " \
                              "double quotes" and broken["hypothesis"] is None
    assert "leaves the corpus folder" in evil["error"]
    assert doc["wer"] == 0.0625 and doc["wer_interval"] == [0.0625, 0.0625]
    missing = _cli("corpus", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and missing.stderr == f"error: no such corpus: {tmp_path / 'nowhere'}\n"


def test_stream_replays_a_clip_and_writes_every_update_and_the_committed_words(tmp_path):
    out = tmp_path / "stream.json"
    result = _cli("stream", str(sample_named("english_weather").path), "--policy", "alignatt", "--chunk", "2",
                  "--json", str(out))
    assert result.returncode == 0, result.stderr
    # (AlignAtt commits early: its first 2 s, "The wea-", may be committed misheard)
    assert "AlignAtt (25 frames" in result.stdout and "today is sunny with light breeze" in result.stdout
    doc = json.loads(out.read_text())
    assert [u["time_s"] for u in doc["updates"]] == [2.0, 4.0, 6.0, 8.0, 8.653]
    assert all({"word", "start", "end"} == set(w) for u in doc["updates"] for w in u["hypothesis"] + u["committed"])
    committed = [w for u in doc["updates"] for w in u["committed"]]
    assert [w["word"] for w in committed] == [w["word"] for w in doc["committed"]]
    assert all(w["committed_s"] >= w["heard_s"] for w in doc["committed"])
    bad = _cli("stream", str(sample_named("english_weather").path), "--chunk", "0")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "chunk size" in bad.stderr
