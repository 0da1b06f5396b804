"""The Engine as a Ray Serve application: many app servers, one or more GPUs, models loaded where asked for.

Ray Serve already does what a class-sized deployment needs (an HTTP proxy, replicas placed on GPUs,
autoscaling, model multiplexing), so this module only adapts the Engine to it:

- each request goes straight to its model's Engine, whose worker batches continuously (a window joins
  the rows in flight at the next decoder step and leaves when it ends), so a request is answered as
  soon as its own trace is ready. (A `@serve.batch` in front of it once handed every request of a 50 ms
  window to one `analyze_all` and answered when the last was done, and every user waited for the
  slowest: docs/performance.md, "Through Ray Serve".) Capacity comes from replicas (`num_replicas`, or a Serve config's
  autoscaling), each with its own engines;
- `@serve.multiplexed` loads tiny.en, base or any other model `models.load_model` knows on the replica
  that is asked for it (the `serve_multiplexed_model_id` header names it, and Serve routes a model's
  requests to replicas that have it) and keeps a few per replica; one it evicts is closed;
- replicas declare `num_gpus` (1 where the machine building the app has a GPU, else 0; a cluster's
  Serve config overrides it, see deploy/rayservice.yaml);
- a request is values, never a pickle: an npz holding the 16 kHz samples and `request.json` (the
  audio's facts and the AnalysisOptions); the answer is the Trace as the project's npz + JSON bytes
  (serialize.trace_to_bytes). The wire format lives in serve_client.py, which needs no Ray. Bad input
  answers 422 with the library's one-line message. A client that hangs up cancels its request.

Run it with `make serve`, or `serve run whisper_inquiry.serve.app:build_app` (docs/architecture.md), and point
the app at it with `WHISPER_INQUIRY_ENGINE=http://host:8000/`.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from whisper_inquiry.engine.core import AnalysisRequest, Engine
from whisper_inquiry.engine.threads import prepare_engine_process
from whisper_inquiry.errors import InquiryError
from whisper_inquiry.serve.client import DEFAULT_MODEL, TRACE_MEDIA_TYPE, request_from_bytes
from whisper_inquiry.trace.serialize import trace_to_bytes

MAX_ONGOING_REQUESTS = 32  # per replica: each is a thread waiting on the engine's worker, which batches them
MODELS_PER_REPLICA = 3  # tiny.en + base + one more fit easily in one GPU's memory
# Tests only: while the file this variable names exists, a request waits inside the replica before its
# analysis (so a test can kill the replica with the request certainly in it); `<path>.arrived` says one came.
HOLD_VARIABLE = "WHISPER_INQUIRY_SERVE_HOLD"


def error_response(exc: InquiryError) -> Response:
    """The library's one-line message and its class name, so the client raises the same kind of error."""
    body = json.dumps({"error": type(exc).__name__, "message": str(exc).splitlines()[0] if str(exc) else ""})
    return Response(body, status_code=422, media_type="application/json")


class LoadedEngine:
    """An Engine as @serve.multiplexed keeps it: Serve calls `__del__` when it evicts a model, which closes it."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def __del__(self):
        self.engine.close()


# -- the deployment ------------------------------------------------------------------------------------
@serve.deployment(max_ongoing_requests=MAX_ONGOING_REQUESTS, ray_actor_options={"num_cpus": 1})
class WhisperEngine:
    """One replica: the Engines of the models it was asked for, each request handed straight to its own."""

    async def __init__(self, preload: list[str] | None = None, device: str | None = None):
        prepare_engine_process()  # this replica's process: its engines' workers share it with request threads
        self.device = device
        # one thread per request in flight, each waiting on its engine's worker (asyncio's default pool
        # has min(32, cores + 4) threads: 6 on a 2-core machine, which would hold the seventh user back)
        self._threads = ThreadPoolExecutor(MAX_ONGOING_REQUESTS, thread_name_prefix="whisper-request")
        # Ready before the first user (issue 10): the replica reports healthy only once these models are
        # loaded and warmed up, so no one's first click pays for it. Serve awaits an async constructor.
        for model_id in preload or []:
            await self.engine(model_id)

    @serve.multiplexed(max_num_models_per_replica=MODELS_PER_REPLICA)
    async def engine(self, model_id: str) -> LoadedEngine:
        """Load and warm up `model_id` on this replica (a thread, so the replica keeps answering)."""
        return LoadedEngine(await asyncio.to_thread(Engine.load, model_id, self.device))

    async def analyze(self, engine: Engine, request: AnalysisRequest) -> Response:
        """One request on its engine, answered when its own trace is ready; a client that hangs up (Serve
        cancels this task) cancels the analysis's next window."""
        cancelled = threading.Event()
        loop = asyncio.get_running_loop()
        try:
            trace = await loop.run_in_executor(self._threads, lambda: engine.analyze(
                request.audio, request.options, cancelled=cancelled))
        except asyncio.CancelledError:
            cancelled.set()
            raise
        except InquiryError as exc:
            return error_response(exc)
        data = await loop.run_in_executor(self._threads, trace_to_bytes, trace)
        return Response(data, media_type=TRACE_MEDIA_TYPE)

    async def __call__(self, http: Request) -> Response:
        model_id = serve.get_multiplexed_model_id() or DEFAULT_MODEL
        try:
            request = request_from_bytes(await http.body())
            loaded = await self.engine(model_id)
        except InquiryError as exc:
            return error_response(exc)
        await _held()
        return await self.analyze(loaded.engine, request)


async def _held() -> None:
    """The tests' hold (HOLD_VARIABLE): wait while the named file exists. Unset, this costs one lookup."""
    path = os.environ.get(HOLD_VARIABLE)
    if not path or not os.path.exists(path):
        return
    with open(f"{path}.arrived", "w"):
        pass
    while os.path.exists(path):
        await asyncio.sleep(0.05)


def gpus_here() -> int:
    """1 GPU per replica where the building machine has one, else 0 (CPU replicas)."""
    import torch

    return 1 if torch.cuda.is_available() else 0


def build_app(args: dict[str, Any] | None = None) -> serve.Application:
    """The Serve application (`serve run whisper_inquiry.serve.app:build_app models=tiny.en,base num_gpus=1`).

    args: `models` (comma-separated, loaded at start-up; others load on first request), `device`,
    `num_gpus` (default: gpus_here()), `num_cpus` and `num_replicas` (default 1 each). A Serve config
    may also override the deployment's options (replicas, autoscaling)."""
    args = dict(args or {})
    preload = [m for m in str(args.get("models", DEFAULT_MODEL)).split(",") if m.strip()]
    num_gpus = float(args.get("num_gpus", gpus_here()))
    options: dict[str, Any] = {"ray_actor_options": {"num_cpus": float(args.get("num_cpus", 1)), "num_gpus": num_gpus}}
    if "num_replicas" in args:  # else one, or what the Serve config's autoscaling_config decides
        options["num_replicas"] = int(args["num_replicas"])
    deployment = WhisperEngine.options(**options)
    return deployment.bind([m.strip() for m in preload], args.get("device"))


def main(argv: list[str] | None = None) -> None:
    """`make serve`: a local Ray, the application on host:port, until Ctrl-C (then Ray is shut down)."""
    import argparse
    import os
    import time
    from pathlib import Path

    import ray

    parser = argparse.ArgumentParser(prog="python -m whisper_inquiry.serve", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve app servers on other machines")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--models", default=DEFAULT_MODEL, help="loaded at start-up, comma-separated")
    parser.add_argument("--num-cpus", type=int, default=None, help="Ray's CPUs (default: all)")
    parser.add_argument("--replicas", type=int, default=1, help="replicas, the machine's cores shared between them")
    args = parser.parse_args(argv)
    # Ray's raylet gives its metrics agent 10 s to start; a busy machine needs more.
    os.environ.setdefault("RAY_agent_register_timeout_ms", "120000")
    root = str(Path(__file__).resolve().parents[2])
    cores = args.num_cpus or os.cpu_count() or 1
    ray.init(num_cpus=cores, include_dashboard=False,
             runtime_env={"env_vars": {"PYTHONPATH": root, "MALLOC_ARENA_MAX": "2"}})
    # the cores shared between the replicas: Ray gives each replica's torch as many threads as it has
    # CPUs (one, by default, which left a CPU replica a single thread on any machine)
    per_replica = max(1, cores // args.replicas)
    try:
        serve.start(http_options={"host": args.host, "port": args.port})
        serve.run(build_app({"models": args.models, "num_replicas": args.replicas, "num_cpus": per_replica}),
                  name="whisper-inquiry", route_prefix="/")
        print(f"Whisper Inquiry engine ready at http://{args.host}:{args.port}/ ({args.models}); point the app at "
              f"it with: make run ENGINE=http://{args.host}:{args.port}/", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()
