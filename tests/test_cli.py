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
