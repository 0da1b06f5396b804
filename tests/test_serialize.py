"""Trace.save / load round-trip exactly, with no pickle."""

import dataclasses
import io
import json
import zipfile

import numpy as np
import pytest

from whisper_inquiry.errors import TraceFormatError
from whisper_inquiry.trace.derived import full_head
from whisper_inquiry.trace.serialize import iter_arrays, load_trace, save_trace, trace_to_bytes


def _assert_same(a, b, path="trace"):
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b), path
        for f in dataclasses.fields(a):
            _assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True), path
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}.{i}")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), path
    else:
        assert a == b, path


@pytest.mark.parametrize("fixture", ["greedy_trace", "beam_trace"])
def test_trace_round_trips_exactly(request, tmp_path, fixture):
    trace = request.getfixturevalue(fixture)
    path = tmp_path / "trace.npz"
    save_trace(trace, path)
    loaded = load_trace(path)
    _assert_same(trace, loaded)
    assert full_head(loaded, 0, 0, 0).shape == (1500, 1500)


def test_saved_trace_is_npz_and_json_without_pickle(greedy_trace):
    data = trace_to_bytes(greedy_trace)  # what the Export page offers for download
    _assert_same(greedy_trace, load_trace(data))
    with np.load(__import__("io").BytesIO(data), allow_pickle=False) as npz:
        doc = json.loads(npz["trace.json"].tobytes())
        assert all(npz[name].dtype != object for name in npz.files)
    assert doc["text"] == greedy_trace.text
    assert len(list(iter_arrays(greedy_trace))) == len(zipfile.ZipFile(__import__("io").BytesIO(data)).namelist()) - 1


def test_a_file_that_is_not_a_trace_is_refused_clearly(tmp_path):
    with pytest.raises(TraceFormatError, match="not a Whisper Inquiry trace"):
        load_trace(b"hello")
    path = tmp_path / "other.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(TraceFormatError, match="no trace.json"):
        load_trace(path)


def _rewrite(data: bytes, edit) -> bytes:
    """The same npz with its trace.json edited (and arrays added) by `edit(doc, arrays)`."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    doc = json.loads(arrays.pop("trace.json").tobytes())
    edit(doc, arrays)
    arrays["trace.json"] = np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def _as_version_1(doc: dict, arrays: dict) -> None:
    """What version 1 wrote: no Window.captured, and summaries (over all 1500 positions) saved beside q and k
    once a view had asked for them."""
    doc["version"] = 1
    for i, window in enumerate(doc["windows"]):
        del window["captured"]
        prefix = f"trace.windows.{i}.encoder.summaries"
        n_layer, n_head = window["encoder"]["n_layer"], window["encoder"]["n_head"]
        arrays[f"{prefix}.pooled"] = np.zeros((n_layer, n_head, 100, 100), np.float16)
        arrays[f"{prefix}.entropy_bits"] = np.zeros((n_layer, n_head), np.float32)
        arrays[f"{prefix}.distance_ms"] = np.zeros((n_layer, n_head), np.float32)
        window["encoder"]["summaries"] = {k: {"__array__": f"{prefix}.{k}"}
                                          for k in ("pooled", "entropy_bits", "distance_ms")}


def test_a_version_1_trace_loads_and_its_whole_window_summaries_are_recomputed(greedy_trace):
    from whisper_inquiry.options import AnalysisOptions
    from whisper_inquiry.trace.derived import head_summaries

    old = load_trace(_rewrite(trace_to_bytes(greedy_trace), _as_version_1))
    assert old.version == 2 and old.windows[0].captured == {}
    assert isinstance(old.options, AnalysisOptions) and old.options == greedy_trace.options
    assert old.windows[0].encoder.summaries is None  # dropped: q and k are there to redo them over the audio
    assert head_summaries(old, 0).entropy_bits.min() > 0
    _assert_same(greedy_trace, old)


def test_options_written_by_another_version_take_defaults_for_what_they_lack(greedy_trace):
    def drop_and_add(doc, arrays):
        del doc["options"]["top_k"]
        doc["options"]["a_knob_from_the_future"] = 1

    loaded = load_trace(_rewrite(trace_to_bytes(greedy_trace), drop_and_add))
    assert loaded.options == greedy_trace.options


def test_a_trace_of_an_unknown_version_is_refused_in_one_line_naming_it(greedy_trace):
    data = _rewrite(trace_to_bytes(greedy_trace), lambda doc, arrays: doc.update(version=99))
    with pytest.raises(TraceFormatError, match=r"^trace version 99 cannot be read here: .* reads versions 1, 2$"):
        load_trace(data)


def test_a_damaged_trace_is_refused_in_one_line(greedy_trace):
    data = _rewrite(trace_to_bytes(greedy_trace), lambda doc, arrays: doc.pop("windows"))
    with pytest.raises(TraceFormatError, match="damaged trace") as err:
        load_trace(data)
    assert "\n" not in str(err.value)
