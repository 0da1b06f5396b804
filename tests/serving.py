"""A real local Ray Serve for the tests: Ray with 2 CPUs, one tiny.en CPU replica, traces over HTTP.

`running_serve` starts it for conftest's session-wide `serve_url` fixture: starting Ray and deploying costs
about 7 s on a quiet 2-core machine (20 to 25 s under a test run's load), so one deployment serves every
module that needs one (they run on one worker, as xdist's "ray" group, one after another) and is shut down
at the end of the run. While `hold_path(url)` exists, a request
waits inside the replica before its analysis (serve.HOLD_VARIABLE): a test can then act on a request
that is certainly in the replica, however fast the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the serving extra: pip install -r requirements-serve.txt")
from ray import serve  # noqa: E402

from whisper_inquiry.serve.app import HOLD_VARIABLE, build_app  # noqa: E402
from whisper_inquiry.serve.client import ServeEngine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
APP_NAME = "whisper-inquiry-test"
_HOLDS: dict[str, Path] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deploy() -> None:
    serve.run(build_app({"models": "tiny.en", "num_gpus": 0, "num_cpus": 2, "device": "cpu"}),
              name=APP_NAME, route_prefix="/")


def client(url: str, model: str = "tiny.en") -> ServeEngine:
    """A client that waits as long as a loaded shared 2-core machine may need (four analyses took 270 s)."""
    return ServeEngine(url, model, answer_timeout_s=900)


def hold_path(url: str) -> Path:
    """The file whose existence holds every request inside the replica (see the module docstring)."""
    return _HOLDS[url]


def _patient(get_node, timeout_s: float):
    def get(*args, **kwargs):
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return get_node(*args, **kwargs)
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
    return get


def _end_rays_children() -> None:
    """A failed ray.init leaves the processes it started (GCS, agents) running: end them, ours only, by id."""
    ray.shutdown()
    parents, ours = {os.getpid()}, []
    for _ in range(3):  # children, grandchildren, ...
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                pid, ppid = int(stat.parent.name), int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid in parents and pid not in parents:
                parents.add(pid)
                ours.append(pid)
    for pid in ours:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


AGENT_PORTS = ("metrics_agent_port", "metrics_export_port", "dashboard_agent_listen_port", "runtime_env_agent_port")


def _with_fixed_agent_ports(init):
    def start(self, ray_params, *args, **kwargs):
        for name in AGENT_PORTS:
            if not getattr(ray_params, name, None):
                setattr(ray_params, name, free_port())
        return init(self, ray_params, *args, **kwargs)
    return start


@contextlib.contextmanager
def running_serve(tmp_path_factory):
    port = free_port()
    hold = tmp_path_factory.mktemp("serve-hold") / "hold"
    # The replica analyses with as many threads as this process does, so both sum in the same order.
    threads = str(__import__("torch").get_num_threads())
    # On a busy shared 2-core machine Ray 2.60 can fail to start: its raylet aborts when the agents'
    # port files (written once those Python processes are up) take over 15 s to appear, and the driver
    # gives the node 30 s to register (both hard-coded). Fixed agent ports skip the files; the driver
    # is given three minutes.
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("RAY_agent_register_timeout_ms", "180000")
    monkeypatch.setattr(ray._private.services, "get_node", _patient(ray._private.services.get_node, 180))
    monkeypatch.setattr(ray._private.node.Node, "__init__", _with_fixed_agent_ports(ray._private.node.Node.__init__))
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": threads, HOLD_VARIABLE: str(hold)}
    for attempt in range(3):  # the dashboard agent's own port file still has a fixed 15 s: try again
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
            break
        except Exception:
            _end_rays_children()
            if attempt == 2:
                monkeypatch.undo()
                raise
    url = f"http://127.0.0.1:{port}/"
    _HOLDS[url] = hold
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        deploy()
        yield url
    finally:
        _HOLDS.pop(url, None)
        serve.shutdown()
        ray.shutdown()
        monkeypatch.undo()
