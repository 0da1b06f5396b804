"""components/session.py: the app's cache of engines closes each engine it lets go of."""

from __future__ import annotations

import pytest

from components import session


class FakeEngine:
    """Stands in for a loaded model: only its name and whether it was closed."""

    def __init__(self, name: str):
        self.name, self.closed = name, False

    def close(self, timeout_s: float | None = None) -> None:
        self.closed = True


@pytest.fixture
def engines(monkeypatch):
    made: list[FakeEngine] = []
    monkeypatch.setattr(session, "engine_for", lambda name: made.append(FakeEngine(name)) or made[-1])
    session.engine.clear()
    yield made
    session.engine.clear()


def test_the_engine_cache_closes_the_engine_it_evicts_and_keeps_the_rest(engines):
    names = [f"model-{i}" for i in range(session.MAX_ENGINES + 1)]
    for name in names[:-1]:
        assert session.engine(name).name == name
    assert session.engine(names[0]) is engines[0]  # cached: not loaded twice, and now the most recent
    assert not any(e.closed for e in engines)
    session.engine(names[-1])  # one more than the cache keeps: the least recently used goes
    closed = [e.name for e in engines if e.closed]
    assert closed == [names[1]], closed
    session.engine.clear()  # the app's cache cleared (a redeploy, "Clear cache"): every engine is closed
    assert all(e.closed for e in engines)
