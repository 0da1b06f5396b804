"""Trace.save / load round-trip exactly, with no pickle."""

import dataclasses
import json
import zipfile

import numpy as np
import pytest

from whisper_inquiry.errors import TraceFormatError
from whisper_inquiry.serialize import iter_arrays, load_trace, save_trace, trace_to_bytes


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
    assert loaded.windows[0].encoder.head(0, 0).shape == (1500, 1500)


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
