"""`make load` (python bench/load.py): a class pressing Analyse at once, through the engine the app uses.

N simulated users (default 8) each send a different clip (the bundled samples plus clips made from
them: trimmed, sped up, noisy, joined into more than 30 s) with options of their own, all at the same
moment, to one Engine. The same requests are also run one at a time; serial and concurrent rounds are
interleaved, because the machine may be shared and its speed drifts. Prints p50/p95/max latency from
request to Trace, the throughput against the serial runs, the batch sizes the worker formed, peak
memory, whether every concurrent result equals its solo run (tokens, texts and trees exactly; floats
reported by their largest difference), and memory across repeated analyses. Ends with ONE JSON line
per engine measured.

`--engine serve` (`make load SERVE=1`) then sends the same requests to a Ray Serve deployment
(whisper_inquiry.serve.client; started here with `--replicas` replicas unless `--url` names one), prints
the two engines side by side and ends with two JSON lines, `"engine": "inprocess"` and `"engine": "serve"`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from whisper_inquiry.audio.load import SAMPLE_RATE  # noqa: E402
from whisper_inquiry.engine.core import AnalysisRequest  # noqa: E402
from whisper_inquiry.options import AnalysisOptions  # noqa: E402
from whisper_inquiry.trace.sameness import compare, divergences  # noqa: E402

# Largest float difference still counted as the same result: what a batched matmul's rounding moves a
# log-probability or an attention weight by (measured: 3e-5 in float32 here; fp16 on a GPU rounds ~1e-3).
FLOAT_TOLERANCE = {"cpu": 1e-4, "cuda": 5e-3}


def clips() -> list[tuple[str, np.ndarray]]:
    """Different clips of mixed lengths: bundled samples, then variants made from them."""
    from whisper_inquiry.audio.load import load_audio
    from whisper_inquiry.audio.perturb import Perturbation, apply
    from whisper_inquiry.audio.samples import sample_named

    s = {n: load_audio(sample_named(n).path).samples
         for n in ("english_weather", "english_numbers", "english_story", "spanish", "white_noise", "chirp")}
    made = [
        ("weather", s["english_weather"]),
        ("numbers", s["english_numbers"]),
        ("story", s["english_story"]),
        ("spanish", s["spanish"]),
        ("weather, first 3 s cut", apply(s["english_weather"], Perturbation("trim", 3.0))),
        ("numbers at 1.2x", apply(s["english_numbers"], Perturbation("speed", 1.2))),
        ("story + weather (two windows)", np.concatenate([s["english_story"], s["english_weather"]])),
        ("weather in noise, 10 dB", apply(s["english_weather"], Perturbation("added noise", 10.0, seed=1))),
        ("white noise", s["white_noise"]),
        ("numbers, 2 s silence before", apply(s["english_numbers"], Perturbation("silence before", 2.0))),
        ("chirp", s["chirp"]),
        ("story at 0.9x", apply(s["english_story"], Perturbation("speed", 0.9))),
    ]
    return made


OPTIONS = [  # options of each user; all greedy but one, most sharing their first window's decoding options
    AnalysisOptions(),
    AnalysisOptions(top_k=5),
    AnalysisOptions(fallback=False),
    AnalysisOptions(qk_budget_mb=0),
    AnalysisOptions(timestamps=False),
    AnalysisOptions(top_k=20),
    AnalysisOptions(),
    AnalysisOptions(strategy="beam", beam_size=3),
]


def requests_for(users: int, saved: Path | None = None, mixed: bool = True) -> list[tuple[str, AnalysisRequest]]:
    """Each user's clip and options. `saved` (an npz from --save-clips): the same clips, made elsewhere,
    for a machine without the perturbation lab's libraries (a GPU box reached by copying files)."""
    if saved is not None:
        with np.load(saved) as z:
            names = [str(n) for n in z["names"]]
            made = [(n, z[f"clip{i}"]) for i, n in enumerate(names)]
    else:
        made = clips()
    out = []
    for i in range(users):
        name, samples = made[i % len(made)]
        if i >= len(made):  # more users than clips: a different cut of the same sound
            cut = 0.5 * (i // len(made))
            samples, name = samples[int(cut * SAMPLE_RATE):], f"{name}, cut {cut:g} s"
        out.append((name, AnalysisRequest(samples, OPTIONS[i % len(OPTIONS)] if mixed else AnalysisOptions())))
    return out


def save_clips(path: Path) -> None:
    made = clips()
    np.savez(path, names=np.array([n for n, _ in made]), **{f"clip{i}": a for i, (_, a) in enumerate(made)})


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serial(engine, requests) -> tuple[float, list]:
    started = time.perf_counter()
    traces = [engine.analyze(r.audio, r.options) for _, r in requests]
    return time.perf_counter() - started, traces


def concurrent(engine, requests) -> tuple[float, list, list[float]]:
    """Every user at once, each in its own thread (as Streamlit runs each session's script)."""
    traces: list = [None] * len(requests)
    latencies = [0.0] * len(requests)
    barrier = threading.Barrier(len(requests) + 1)

    def user(i: int, request: AnalysisRequest) -> None:
        barrier.wait()
        t = time.perf_counter()
        traces[i] = engine.analyze(request.audio, request.options)
        latencies[i] = time.perf_counter() - t

    threads = [threading.Thread(target=user, args=(i, r)) for i, (_, r) in enumerate(requests)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - started, traces, latencies


def local_serve(model: str, replicas: int = 1) -> tuple[str, object]:
    """Ray and the Serve application on a free local port, as `make serve` starts them, the machine's
    cores shared between `replicas` CPU replicas (each replica's torch uses as many threads as it has
    CPUs, as the in-process engine uses them all); returns the URL and a function that shuts both down."""
    import socket

    import ray
    from ray import serve

    from whisper_inquiry.serve.app import build_app

    os.environ.setdefault("RAY_agent_register_timeout_ms", "120000")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    import torch

    cores = os.cpu_count() or 2
    # Ray runs its workers at nice 15; here the replica competes with this process's eight users for the
    # same cores, where the in-process engine ran at this process's priority: give it the same
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, _system_config={"worker_niceness": 0},
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "MALLOC_ARENA_MAX": "2"}})
    per_replica = 1 if torch.cuda.is_available() else max(1, cores // replicas)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app({"models": model, "num_replicas": replicas, "num_cpus": per_replica}),
              name="whisper-inquiry-load", route_prefix="/")

    def stop() -> None:
        serve.shutdown()
        ray.shutdown()

    return f"http://127.0.0.1:{port}/", stop


def busy_of(engine) -> dict[str, float]:
    """The in-process worker's seconds by stage so far (a Serve client has none here)."""
    stats = getattr(getattr(engine, "worker", None), "stats", None)
    return dict(stats.busy_s) if stats is not None else {}


def measure(engine, requests, rounds: int, memory_runs: int, tolerance: float) -> dict:
    """Serial and concurrent rounds, interleaved, after one unmeasured concurrent round (first calls pay
    for kernel compiles and caches, on a GPU for each new batch shape); every concurrent trace compared
    with its solo run."""
    t, _, _ = concurrent(engine, requests)
    print(f"warm-up round, all at once: {t:.2f} s", flush=True)
    serial_s, concurrent_s, latencies, solo, batch_sizes = [], [], [], None, {}
    sameness, diverged = [], []
    busy_before = busy_of(engine)
    for round_ in range(rounds):
        t, traces = serial(engine, requests)
        serial_s.append(t)
        solo = solo or traces
        before = dict(getattr(engine, "batch_sizes", {}))
        t, traces, lat = concurrent(engine, requests)
        concurrent_s.append(t)
        latencies += lat
        after = dict(getattr(engine, "batch_sizes", {}))
        for size, n in after.items():
            batch_sizes[size] = batch_sizes.get(size, 0) + n - before.get(size, 0)
        sameness += [compare(a, b) for a, b in zip(solo, traces)]
        diverged += [f"{name}: {d}" for (name, _), a, b in zip(requests, solo, traces) for d in divergences(a, b)]
        print(f"round {round_ + 1}: one at a time {serial_s[-1]:.2f} s, all at once {concurrent_s[-1]:.2f} s",
              flush=True)
    busy = {k: round(v - busy_before.get(k, 0.0), 2)
            for k, v in busy_of(engine).items()}
    for i, ((name, r), s, trace) in enumerate(zip(requests, sameness, solo)):
        verdict = "identical" if s.identical else (
            f"float diff {s.max_float_diff:.2g} at {s.where}" if not s.differences else f"DIFFERS: {s.differences[0]}")
        attempts = sum(len(w.attempts) for w in trace.windows)
        waited = "/".join(f"{latencies[k]:.1f}" for k in range(i, len(latencies), len(requests)))
        print(f"  {name:36s} {r.options.strategy:6s} {trace.duration_s:5.1f} s, {len(trace.windows)} window(s), "
              f"{attempts} attempt(s), waited {waited} s  {verdict}")
    growth = None
    if memory_runs:
        start_mb = rss_mb()
        done = 0
        trail = []
        while done < memory_runs:
            concurrent(engine, requests[: min(len(requests), memory_runs - done)])
            done += min(len(requests), memory_runs - done)
            trail.append(round(rss_mb()))
        print(f"resident MB after each round of the memory check: {trail}")
        growth = rss_mb() - start_mb
        print(f"memory across {done} more analyses: {start_mb:.0f} MB -> {rss_mb():.0f} MB")
    for line in diverged:
        print("  chosen token changed by batching:", line)
    lat = sorted(latencies)
    max_diff = max(s.max_float_diff for s in sameness)
    return {
        "token_divergences": diverged,
        "worker_busy_s": busy,
        "identical_to_solo": all(not s.differences for s in sameness) and max_diff <= tolerance,
        "tokens_identical_to_solo": all(not s.differences for s in sameness),
        "bitwise_identical_to_solo": all(s.identical for s in sameness),
        "max_float_diff": max_diff,
        "float_tolerance": tolerance,
        "throughput_vs_serial": round(statistics.median(serial_s) / statistics.median(concurrent_s), 3),
        "serial_s": [round(x, 2) for x in serial_s],
        "concurrent_s": [round(x, 2) for x in concurrent_s],
        "p50_s": round(statistics.median(lat), 2),
        "p95_s": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 2),
        "max_s": round(lat[-1], 2),
        "batch_sizes": {str(k): v for k, v in sorted(batch_sizes.items())},
        "rss_growth_mb": None if growth is None else round(growth),
        "memory_runs": memory_runs,
        "solo": solo,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--engine", choices=("inprocess", "serve"), default="inprocess",
                        help="serve: also through Ray Serve (started here unless --url names it), beside in-process")
    parser.add_argument("--url", default=os.environ.get("WHISPER_INQUIRY_ENGINE"), help="a running Serve endpoint")
    parser.add_argument("--replicas", type=int, default=1, help="replicas of the Serve engine started here")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when there is one)")
    parser.add_argument("--rounds", type=int, default=2, help="serial and concurrent rounds, interleaved")
    parser.add_argument("--memory-runs", type=int, default=50, help="analyses for the memory check (0: skip)")
    parser.add_argument("--max-batch", type=int, default=None, help="default: the engine's (8 on a CPU, 32 on a GPU)")
    parser.add_argument("--max-wait-ms", type=float, default=30.0)
    parser.add_argument("--loop", action="store_true",
                        help="every window in whisper's own loop (no batched step: the engine before it), to compare")
    parser.add_argument("--lockstep", action="store_true",
                        help="decode in whisper's lockstep batches only (no continuous batching), to compare")
    parser.add_argument("--switch-interval-ms", type=float, default=None,
                        help="the interpreter's thread switch interval (default: the engine's 0.1 ms; Python's is 5)")
    parser.add_argument("--options", choices=("mixed", "default"), default="mixed",
                        help="mixed: each user's own options (one in eight beam search); default: a class on defaults")
    parser.add_argument("--clips", type=Path, help="the users' clips from an npz written by --save-clips")
    parser.add_argument("--save-clips", type=Path, help="write the clips to this npz and stop")
    args = parser.parse_args()
    if args.users < 1 or args.rounds < 1:
        print("error: --users and --rounds must be at least 1", file=sys.stderr)
        sys.exit(2)
    if args.save_clips:
        save_clips(args.save_clips)
        return

    from whisper_inquiry.engine.core import Engine
    from whisper_inquiry.engine.threads import prepare_engine_process
    from whisper_inquiry.models.load import load_model

    requests = requests_for(args.users, args.clips, args.options == "mixed")
    audio_s = sum(len(r.audio) for _, r in requests) / SAMPLE_RATE
    if args.switch_interval_ms is not None:
        sys.setswitchinterval(args.switch_interval_ms / 1000)
    else:
        prepare_engine_process()  # as the app's launcher does
    engine = Engine(load_model(args.model, args.device), max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                    continuous=not args.lockstep, batched=not args.loop)
    device = engine.model.device.type
    tolerance = FLOAT_TOLERANCE[device]
    print(f"{args.users} users, {audio_s:.0f} s of audio in all, model {args.model} on {device}, "
          f"warm-up {engine.warm_up_s:.2f} s", flush=True)
    common = {"users": args.users, "options": args.options, "model": args.model, "device": device}
    print("in-process engine:")
    inprocess = measure(engine, requests, args.rounds, 0 if args.engine == "serve" else args.memory_runs, tolerance)
    solo = inprocess.pop("solo")
    inprocess.update({
        "engine": "inprocess", **common,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "max_batch": engine.worker.max_batch,
        "continuous": not args.lockstep,
        "batched_step": not args.loop,
        "max_wait_ms": args.max_wait_ms,
        "warm_up_s": round(engine.warm_up_s, 2),
        "switch_interval_ms": round(sys.getswitchinterval() * 1000, 3),
    })
    lines = [inprocess]
    if args.engine == "serve":
        from whisper_inquiry.serve.client import ServeEngine

        engine.close(timeout_s=60)  # its worker and model leave the cores and memory to the replicas
        url, stop = (args.url, None) if args.url else local_serve(args.model, args.replicas)
        try:
            print(f"Ray Serve engine at {url}:")
            served = measure(ServeEngine(url, args.model, answer_timeout_s=900), requests, args.rounds,
                             args.memory_runs, tolerance)
            to_inprocess = [compare(a, b) for a, b in zip(solo, served.pop("solo"))]
            served["identical_to_inprocess"] = all(not s.differences for s in to_inprocess) and max(
                s.max_float_diff for s in to_inprocess) <= tolerance
        finally:
            if stop is not None:
                stop()
        served.update({"engine": "serve", **common, "url": args.url or "started here",
                       "replicas": None if args.url else args.replicas})
        lines.append(served)
        side_by_side(inprocess, served)
    for line in lines:
        print(json.dumps(line))


def side_by_side(inprocess: dict, served: dict) -> None:
    """The two engines' figures in one table, and the issue's targets for Serve (one replica)."""
    print(f"{'':24s} {'in-process':>12s} {'Ray Serve':>12s} {'ratio':>7s}")
    for key, label in (("p50_s", "p50 (s)"), ("p95_s", "p95 (s)"), ("max_s", "max (s)"),
                       ("throughput_vs_serial", "throughput vs serial")):
        a, b = inprocess[key], served[key]
        print(f"{label:24s} {a:12.2f} {b:12.2f} {b / a:7.2f}")
    a, b = statistics.median(inprocess["concurrent_s"]), statistics.median(served["concurrent_s"])
    print(f"{'all at once (s)':24s} {a:12.2f} {b:12.2f} {b / a:7.2f}")
    print(f"targets: Serve p50 within 1.3x of in-process: {served['p50_s'] / inprocess['p50_s']:.2f}x; "
          f"all-at-once throughput within 15%: {a / b - 1:+.0%}")


if __name__ == "__main__":
    main()
