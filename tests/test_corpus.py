"""A corpus in every layout, hostile zips refused, error rates that are jiwer's, and the run through the engine."""

from __future__ import annotations

import io
import json
import shutil
import stat
import threading
import zipfile

import jiwer
import numpy as np
import pytest

from whisper_inquiry.analyze import analyze
from whisper_inquiry.audio.samples import sample_named
from whisper_inquiry.corpus.read import Limits, open_corpus, open_zip
from whisper_inquiry.corpus.run import ResultStore, run_corpus
from whisper_inquiry.corpus.score import calibration, normalize, paired_difference, score, wer_interval, word_hits
from whisper_inquiry.corpus.table import document, rows_of, slices, summary, to_csv, to_manifest
from whisper_inquiry.engine.core import Engine
from whisper_inquiry.errors import CorpusError
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.trace.serialize import load_trace

WEATHER = "The weather today is sunny with a light breeze. Tomorrow we expect rain in the afternoon."
NUMBERS = "Please call me at five five five, one two three four. The meeting starts at nine thirty."


def _clips(folder, names=("english_weather", "english_numbers")):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(sample_named(name).path, folder / f"{name}.flac")
    return folder


# -- reading -------------------------------------------------------------------------------------------------------

def test_nemo_manifest_rows_columns_and_one_line_errors(tmp_path):
    corpus_dir = _clips(tmp_path / "c")
    (tmp_path / "outside.flac").write_bytes(sample_named("english_weather").path.read_bytes())
    lines = [
        json.dumps({"audio_filepath": "english_weather.flac", "text": WEATHER, "duration": 8.6, "speaker": "a"}),
        json.dumps({"audio_filepath": "missing.flac", "text": "x"}),
        '{"audio_filepath": "english_numbers.flac", "text": ',  # cut short
        json.dumps({"audio_filepath": "../outside.flac", "text": "x"}),
        json.dumps({"audio_filepath": str(tmp_path / "outside.flac"), "text": "x"}),
    ]
    (corpus_dir / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    corpus = open_corpus(corpus_dir)
    assert corpus.layout.startswith("NeMo manifest")
    good, missing, broken, up, absolute = corpus.clips
    assert (good.reference, good.duration_s, good.columns, good.error) == (WEATHER, 8.6, {"speaker": "a"}, None)
    assert missing.error == "no such file: missing.flac"
    assert broken.error.startswith("manifest.jsonl line 3 is not valid JSON")
    assert "leaves the corpus folder" in up.error and up.path is None
    assert "absolute path" in absolute.error
    # a manifest typed on one's own command line may name files anywhere, as NeMo's usually do
    trusted = open_corpus(corpus_dir / "manifest.jsonl", trusted=True)
    assert trusted.clips[3].error is None and trusted.clips[4].error is None
    assert trusted.columns == ["speaker"]


def test_audiofolder_metadata_and_text_beside_each_file(tmp_path):
    csv_dir = _clips(tmp_path / "csv")
    (csv_dir / "metadata.csv").write_text(f'file_name,transcription,accent\nenglish_weather.flac,"{WEATHER}",us\n')
    corpus = open_corpus(csv_dir)
    assert corpus.layout == "audiofolder (metadata.csv)"
    assert [(c.audio, c.reference, c.columns) for c in corpus.clips] == [
        ("english_weather.flac", WEATHER, {"accent": "us"})]

    txt_dir = _clips(tmp_path / "txt")
    (txt_dir / "english_weather.txt").write_text(WEATHER + "\n")
    corpus = open_corpus(txt_dir)
    assert corpus.layout == "a .txt beside each audio file"
    assert {c.audio: c.reference for c in corpus.clips} == {"english_numbers.flac": None,
                                                            "english_weather.flac": WEATHER}
    (txt_dir / "english_weather.txt").unlink()
    assert open_corpus(txt_dir).layout == "audio files, no references"

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hello")
    with pytest.raises(CorpusError, match="^no audio in empty"):
        open_corpus(tmp_path / "empty")


def _zip(entries: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def test_zip_entries_that_leave_the_folder_are_never_written(tmp_path):
    audio = sample_named("english_weather").path.read_bytes()
    manifest = "\n".join(json.dumps({"audio_filepath": p, "text": WEATHER}) for p in ("a.flac", "../evil.flac"))
    data = _zip({"manifest.jsonl": manifest.encode(), "a.flac": audio, "../evil.flac": audio, "/abs.flac": audio,
                 "sub/../../evil2.flac": audio}, links=("link.flac",))
    dest = tmp_path / "deep" / "unpacked"
    corpus = open_zip(data, dest, "upload")
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["deep/unpacked/a.flac", "deep/unpacked/manifest.jsonl"]
    assert len(corpus.refused) == 4 and all(":" in r for r in corpus.refused)
    assert corpus.clips[0].error is None and "leaves the corpus folder" in corpus.clips[1].error


def test_a_zipped_folder_is_read_inside_and_a_config_file_is_no_manifest(tmp_path):
    audio = sample_named("english_weather").path.read_bytes()
    data = _zip({"recordings/metadata.csv": f'file_name,text\nweather.flac,"{WEATHER}"\n'.encode(),
                 "recordings/weather.flac": audio, "recordings/config.json": b'{"sample_rate": 16000}',
                 "recordings/weather.flac/clash.wav": audio})  # a file where a folder would have to go
    corpus = open_zip(data, tmp_path / "u")
    assert corpus.layout == "audiofolder (metadata.csv)" and corpus.root.name == "recordings"
    assert [(c.audio, c.reference, c.error) for c in corpus.clips] == [("weather.flac", WEATHER, None)]
    assert len(corpus.refused) == 1 and corpus.refused[0].startswith("recordings/weather.flac/clash.wav: ")


def test_results_of_two_models_with_alike_names_are_kept_apart(tmp_path):
    long = "/checkpoints/" + "x" * 60
    a, b = (ResultStore(tmp_path, f"{long}/step-{n}", AnalysisOptions()) for n in (1000, 2000))
    assert a.folder != b.folder and a.folder.parent.name.startswith("checkpoints_xxx")


def test_zip_over_the_limits_is_refused_in_one_line(tmp_path):
    few = Limits(zip_bytes=10_000_000, files=3, unpacked_bytes=100_000)
    with pytest.raises(CorpusError, match="holds 4 files; at most 3"):
        open_zip(_zip({f"{i}.wav": b"x" for i in range(4)}), tmp_path / "a", limits=few)
    with pytest.raises(CorpusError, match="would unpack to"):  # a bomb: 1 MB of zeros squeezed to 1 kB
        open_zip(_zip({"bomb.wav": bytes(1_000_000)}), tmp_path / "b", limits=few)
    with pytest.raises(CorpusError, match="the zip is"):
        open_zip(_zip({"a.wav": bytes(1000)}), tmp_path / "c", limits=Limits(zip_bytes=100))
    with pytest.raises(CorpusError, match="^not a zip file"):
        open_zip(b"PK but not really", tmp_path / "d")
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_a_bomb_whose_header_understates_it_is_refused_and_not_written(tmp_path):
    data = bytearray(_zip({"bomb.wav": bytes(500_000)}))
    # the central directory's uncompressed size says 100 bytes; the stream holds 500 kB
    at = data.rfind(b"PK\x01\x02")
    data[at + 24: at + 28] = (100).to_bytes(4, "little")
    with pytest.raises(CorpusError, match="^the zip is damaged: bomb.wav"):
        open_zip(bytes(data), tmp_path / "u", limits=Limits(unpacked_bytes=200_000))
    assert not (tmp_path / "u" / "bomb.wav").exists()


# -- scoring -------------------------------------------------------------------------------------------------------

PAIRS = [(WEATHER, "The weather today is sunny with light breeze. Tomorrow we expect rain in the afternoon."),
         (NUMBERS, "Please call me at 5551234 The meeting starts at 930"),
         ("Mr. Smith paid $20 on the 3rd.", "Mister Smith paid twenty dollars on the third of it"),
         ("the cat sat", "a cat sat on the mat")]


def test_error_rates_are_jiwers_on_whispers_normalised_text():
    scores = [score(r, h) for r, h in PAIRS]
    refs, hyps = [normalize(r, "en") for r, _ in PAIRS], [normalize(h, "en") for _, h in PAIRS]
    for s, ref, hyp in zip(scores, refs, hyps):
        assert s.wer == pytest.approx(jiwer.wer(ref, hyp)) and s.cer == pytest.approx(jiwer.cer(ref, hyp))
        assert [a.reference for a in s.alignment if a.kind != "insert"] == ref.split()
        assert [a.hypothesis for a in s.alignment if a.kind != "delete"] == hyp.split()
    assert scores[1].wer == 0.0  # "nine thirty" and "930" are the same once normalised
    assert (scores[3].substitutions, scores[3].insertions, scores[3].deletions) == (1, 3, 0)
    total = sum(s.errors for s in scores) / sum(s.reference_words for s in scores)
    assert total == pytest.approx(jiwer.wer(refs, hyps))
    lo, hi = wer_interval(scores)
    assert 0 <= lo <= total <= hi
    assert score("", "thank you").wer is None and score("", "thank you").insertions == 2
    assert score("hola amigos", "hola amigo", "es").reference == "hola amigos"  # the basic normaliser


def test_paired_bootstrap_says_which_model_is_better():
    a = [score(WEATHER, "the weather today is windy with a light breeze tomorrow we expect snow")] * 20
    b = [score(WEATHER, WEATHER)] * 20
    diff = paired_difference(list(zip(a, b)))
    assert diff.difference < 0 and diff.interval[1] < 0 and diff.verdict.startswith("B is better")
    same = paired_difference(list(zip(a, a)))
    assert same.difference == 0 and same.verdict.startswith("no clear difference")


def test_calibration_bins_words_and_measures_the_gap():
    hits = word_hits("the cat sat on the mat", [(" The", 0.95), (" cat", 0.9), (" sat", 0.35), (" in", 0.3),
                                                (" the", 0.92), (" hat.", 0.6)], "en")
    assert hits == [(0.95, True), (0.9, True), (0.35, True), (0.3, False), (0.92, True), (0.6, False)]
    honest = calibration([(0.85, True)] * 17 + [(0.85, False)] * 3)
    assert honest.total == 20 and honest.ece == pytest.approx(0.0)
    overconfident = calibration([(0.95, True)] * 5 + [(0.95, False)] * 5)
    assert overconfident.ece == pytest.approx(0.45) and overconfident.accuracy[9] == 0.5


# -- the run -------------------------------------------------------------------------------------------------------

class _Counting:
    """An engine that counts the analyses it is asked for (a second run of the same clips asks for none)."""

    def __init__(self, engine):
        self.engine, self.calls = engine, 0

    def analyze(self, *args, **kwargs):
        self.calls += 1
        return self.engine.analyze(*args, **kwargs)


@pytest.mark.slow
def test_a_corpus_runs_through_the_engine_as_each_clip_alone_and_never_twice(tiny, tmp_path):
    folder = _clips(tmp_path / "c")
    (folder / "english_weather.txt").write_text(WEATHER)
    (folder / "english_numbers.txt").write_text(NUMBERS)
    (folder / "notes.wav").write_text("not audio at all")
    corpus = open_corpus(folder)
    engine = _Counting(Engine(tiny))
    store = ResultStore(tmp_path / "store", "tiny.en", AnalysisOptions())
    seen = []
    runs = run_corpus(engine, corpus, store, on_result=lambda i, r: seen.append(i))
    assert sorted(seen) == [0, 1, 2] and engine.calls == 2  # notes.wav is refused before the engine
    numbers, weather, notes = rows_of(corpus, runs)
    assert notes.error == "not an audio file: notes.wav looks like a text file" and notes.score is None
    for row in (numbers, weather):  # token for token the clip's own analysis, and its trace on disk
        alone = analyze(tiny, row.clip.path, AnalysisOptions())
        kept = load_trace(store.trace_path(row.run))
        assert row.run.hypothesis == alone.text.strip()
        assert [w.final.tokens for w in kept.windows] == [w.final.tokens for w in alone.windows]
        assert kept.audio_name == row.clip.audio
        probs = [s.prob for s in alone.steps]
        # floats within the batched step's rounding (docs/architecture.md: within 1e-4)
        assert row.run.min_prob == pytest.approx(min(probs), abs=1e-4)
        assert row.run.mean_prob == pytest.approx(np.mean(probs), abs=1e-4)
        assert row.score.wer == pytest.approx(jiwer.wer(row.score.reference, row.score.hypothesis))
    total = summary([numbers, weather, notes])
    assert (total.clips, total.failed, total.scored) == (3, 1, 2)
    assert total.wer == pytest.approx(jiwer.wer([numbers.score.reference, weather.score.reference],
                                                [numbers.score.hypothesis, weather.score.hypothesis]))

    again = _Counting(engine.engine)  # a second run, in a fresh store object over the same folder: nothing new
    reruns = run_corpus(again, corpus, ResultStore(tmp_path / "store", "tiny.en", AnalysisOptions()))
    assert again.calls == 0
    assert [r.hypothesis for r in reruns[:2]] == [numbers.run.hypothesis, weather.run.hypothesis]
    assert reruns[2].error == notes.error  # a failure is not kept: it is tried again, and fails again

    doc = document(corpus, [numbers, weather, notes], "tiny.en")
    assert [r["audio"] for r in doc["rows"]] == ["english_numbers.flac", "english_weather.flac", "notes.wav"]
    assert doc["wer"] == total.wer and doc["wer_interval"][0] <= total.wer <= doc["wer_interval"][1]
    assert to_csv([numbers]).splitlines()[0].startswith("audio,reference,hypothesis,wer,cer,substitutions")
    manifest = [json.loads(line) for line in to_manifest([numbers, weather]).splitlines()]
    assert manifest[1]["pred_text"] == weather.run.hypothesis and manifest[1]["text"] == WEATHER
    assert {s.value for s in slices([numbers, weather], "duration")} and weather.run.snr_db > 20


@pytest.mark.slow
def test_cancel_keeps_what_finished_and_the_next_run_does_only_the_rest(tiny, tmp_path):
    folder = _clips(tmp_path / "c", ("english_weather", "english_numbers", "spanish", "silence"))
    corpus = open_corpus(folder)
    store = ResultStore(tmp_path / "store", "tiny.en", AnalysisOptions())
    stop = threading.Event()

    class Cancel(Exception):
        pass

    def on_result(i, run):
        stop.set()
        raise Cancel  # what a page's Cancel does

    with pytest.raises(Cancel):
        run_corpus(Engine(tiny), corpus, store, on_result=on_result, in_flight=2)
    finished = ResultStore(tmp_path / "store", "tiny.en", AnalysisOptions())
    kept = [c for c in corpus.clips if finished.get(_key(c)) is not None]
    assert 1 <= len(kept) < 4
    engine = _Counting(Engine(tiny))
    runs = run_corpus(engine, corpus, finished)
    assert engine.calls == 4 - len(kept) and all(r is not None and r.error is None for r in runs)


def _key(clip) -> str:
    from whisper_inquiry.corpus.run import content_key

    return content_key(clip.path.read_bytes())
