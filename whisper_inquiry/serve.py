"""The Engine as a Ray Serve application: many app servers, one or more GPUs, models loaded where asked for.

Ray Serve already does what a class-sized deployment needs (an HTTP proxy, replicas placed on GPUs,
request batching, autoscaling, model multiplexing), so this module only adapts the Engine to it:

- `@serve.multiplexed` loads tiny.en, base or any other model `models.load_model` knows on the replica
  that is asked for it (the `serve_multiplexed_model_id` header names it) and keeps a few per replica;
- `@serve.batch` gathers the analyses that arrive within `batch_wait_s` from every app session and
  hands each model's share to `Engine.analyze_all` as one request, which the batched engine of
  issue 10 decodes together (each result still equal to its solo run);
- replicas declare `num_gpus` (1 where the machine building the app has a GPU, else 0; a cluster's
  Serve config overrides it, see deploy/rayservice.yaml);
- a request is values, never a pickle: an npz holding the 16 kHz samples and `request.json` (the
  audio's facts and the AnalysisOptions); the answer is the Trace as the project's npz + JSON bytes
  (serialize.trace_to_bytes). The wire format lives in serve_client.py, which needs no Ray. Bad input
  answers 422 with the library's one-line message.

Run it with `make serve`, or `serve run whisper_inquiry.serve:build_app` (see the README), and point
the app at it with `WHISPER_INQUIRY_ENGINE=http://host:8000/`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from .engine import AnalysisRequest, Engine
from .errors import InquiryError
from .serialize import trace_to_bytes
from .serve_client import DEFAULT_MODEL, TRACE_MEDIA_TYPE, request_from_bytes

# Batching defaults: a class pressing Analyse within a second shares passes; 50 ms is a small part of
# an analysis (0.3 s of encoder alone per window on this CPU) and covers requests sent together.
MAX_BATCH_SIZE = 8
BATCH_WAIT_S = 0.05
MODELS_PER_REPLICA = 3  # tiny.en + base + one more fit easily in one GPU's memory


def error_response(exc: InquiryError) -> Response:
    """The library's one-line message and its class name, so the client raises the same kind of error."""
    body = json.dumps({"error": type(exc).__name__, "message": str(exc).splitlines()[0] if str(exc) else ""})
    return Response(body, status_code=422, media_type="application/json")


# -- the deployment ------------------------------------------------------------------------------------
@serve.deployment(max_ongoing_requests=32, ray_actor_options={"num_cpus": 1})
class WhisperEngine:
    """One replica: the Engines of the models it was asked for, and a batch queue in front of them."""

    async def __init__(self, preload: list[str] | None = None, device: str | None = None,
                       max_batch_size: int = MAX_BATCH_SIZE, batch_wait_s: float = BATCH_WAIT_S):
        self.device = device
        self.analyze_batch.set_max_batch_size(max_batch_size)
        self.analyze_batch.set_batch_wait_timeout_s(batch_wait_s)
        # Ready before the first user (issue 10): the replica reports healthy only once these models are
        # loaded and warmed up, so no one's first click pays for it. Serve awaits an async constructor.
        for model_id in preload or []:
            await self.engine(model_id)

    @serve.multiplexed(max_num_models_per_replica=MODELS_PER_REPLICA)
    async def engine(self, model_id: str) -> Engine:
        """Load and warm up `model_id` on this replica (a thread, so the replica keeps answering)."""
        return await asyncio.to_thread(Engine.load, model_id, self.device)

    @serve.batch(max_batch_size=MAX_BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_S)
    async def analyze_batch(self, engines: list[Engine], requests: list[AnalysisRequest]) -> list[Any]:
        """Every request that arrived within the batch window: one analyze_all per model, results in order;
        an error is the failing request's own (its batch-mates are rerun alone and keep their traces)."""
        results: list[Any] = [None] * len(requests)
        groups: dict[int, list[int]] = {}
        for i, engine in enumerate(engines):
            groups.setdefault(id(engine), []).append(i)
        for indices in groups.values():
            engine = engines[indices[0]]
            batch = [requests[i] for i in indices]
            try:
                traces: list[Any] = await asyncio.to_thread(engine.analyze_all, batch)
            except InquiryError:
                traces = [await asyncio.to_thread(_one, engine, r) for r in batch]
            for i, trace in zip(indices, traces, strict=True):
                results[i] = trace if isinstance(trace, InquiryError) else trace_to_bytes(trace)
        return results

    async def __call__(self, http: Request) -> Response:
        model_id = serve.get_multiplexed_model_id() or DEFAULT_MODEL
        try:
            request = request_from_bytes(await http.body())
            engine = await self.engine(model_id)
        except InquiryError as exc:
            return error_response(exc)
        result = await self.analyze_batch(engine, request)
        if isinstance(result, InquiryError):
            return error_response(result)
        return Response(result, media_type=TRACE_MEDIA_TYPE)


def _one(engine: Engine, request: AnalysisRequest) -> Any:
    try:
        return engine.analyze(request.audio, request.options)
    except InquiryError as exc:
        return exc


def gpus_here() -> int:
    """1 GPU per replica where the building machine has one, else 0 (CPU replicas)."""
    import torch

    return 1 if torch.cuda.is_available() else 0


def build_app(args: dict[str, Any] | None = None) -> serve.Application:
    """The Serve application (`serve run whisper_inquiry.serve:build_app models=tiny.en,base num_gpus=1`).

    args: `models` (comma-separated, loaded at start-up; others load on first request), `device`,
    `num_gpus` (default: gpus_here()), `num_cpus` and `num_replicas` (default 1 each), `max_batch_size`,
    `batch_wait_s`. A Serve config may also override the deployment's options (replicas, autoscaling)."""
    args = dict(args or {})
    preload = [m for m in str(args.get("models", DEFAULT_MODEL)).split(",") if m.strip()]
    num_gpus = float(args.get("num_gpus", gpus_here()))
    options: dict[str, Any] = {"ray_actor_options": {"num_cpus": float(args.get("num_cpus", 1)), "num_gpus": num_gpus}}
    if "num_replicas" in args:  # else one, or what the Serve config's autoscaling_config decides
        options["num_replicas"] = int(args["num_replicas"])
    deployment = WhisperEngine.options(**options)
    return deployment.bind([m.strip() for m in preload], args.get("device"),
                           int(args.get("max_batch_size", MAX_BATCH_SIZE)),
                           float(args.get("batch_wait_s", BATCH_WAIT_S)))


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
    parser.add_argument("--replicas", type=int, default=1)
    args = parser.parse_args(argv)
    # Ray's raylet gives its metrics agent 10 s to start; a busy machine needs more.
    os.environ.setdefault("RAY_agent_register_timeout_ms", "120000")
    root = str(Path(__file__).resolve().parent.parent)
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": root}})
    try:
        serve.start(http_options={"host": args.host, "port": args.port})
        serve.run(build_app({"models": args.models, "num_replicas": args.replicas}), name="whisper-inquiry",
                  route_prefix="/")
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
