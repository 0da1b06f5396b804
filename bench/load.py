"""`make load` (python bench/load.py): a class pressing Analyse at once, through the engine the app uses.

N simulated users (default 8) each send a different clip (the bundled samples plus clips made from
them: trimmed, sped up, noisy, joined into more than 30 s) with options of their own, all at the same
moment, to one Engine. The same requests are also run one at a time; serial and concurrent rounds are
interleaved, because the machine may be shared and its speed drifts. Prints p50/p95/max latency from
request to Trace, the throughput against the serial runs, the batch sizes the worker formed, peak
memory, whether every concurrent result equals its solo run (tokens, texts and trees exactly; floats
reported by their largest difference), and memory across repeated analyses. Ends with ONE JSON line.

`--engine serve` sends the same requests to a Ray Serve deployment (whisper_inquiry.serve_client).
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

from whisper_inquiry.audio import SAMPLE_RATE, load_audio  # noqa: E402
from whisper_inquiry.batching import compare  # noqa: E402
from whisper_inquiry.engine import AnalysisRequest  # noqa: E402
from whisper_inquiry.options import AnalysisOptions  # noqa: E402
from whisper_inquiry.perturb import Perturbation, apply  # noqa: E402
from whisper_inquiry.samples import sample_named  # noqa: E402


def clips() -> list[tuple[str, np.ndarray]]:
    """Different clips of mixed lengths: bundled samples, then variants made from them."""
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


def requests_for(users: int) -> list[tuple[str, AnalysisRequest]]:
    made = clips()
    out = []
    for i in range(users):
        name, samples = made[i % len(made)]
        if i >= len(made):  # more users than clips: a different cut of the same sound
            samples = apply(samples, Perturbation("trim", 0.5 * (i // len(made))))
            name = f"{name}, cut {0.5 * (i // len(made)):g} s"
        out.append((name, AnalysisRequest(samples, OPTIONS[i % len(OPTIONS)])))
    return out


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


def make_engine(kind: str, model: str, max_batch: int, max_wait_ms: float):
    if kind == "serve":
        try:
            from whisper_inquiry.serve_client import ServeEngine
        except ImportError as e:
            print(f"error: --engine serve needs whisper_inquiry.serve_client ({e})", file=sys.stderr)
            sys.exit(2)
        return ServeEngine(os.environ.get("WHISPER_INQUIRY_ENGINE", "http://127.0.0.1:8000/whisper"))
    from whisper_inquiry.engine import Engine
    from whisper_inquiry.models import load_model

    return Engine(load_model(model), max_batch=max_batch, max_wait_ms=max_wait_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--engine", choices=("inprocess", "serve"), default="inprocess")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--rounds", type=int, default=2, help="serial and concurrent rounds, interleaved")
    parser.add_argument("--memory-runs", type=int, default=50, help="analyses for the memory check (0: skip)")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-wait-ms", type=float, default=30.0)
    args = parser.parse_args()
    if args.users < 1 or args.rounds < 1:
        print("error: --users and --rounds must be at least 1", file=sys.stderr)
        sys.exit(2)

    engine = make_engine(args.engine, args.model, args.max_batch, args.max_wait_ms)
    requests = requests_for(args.users)
    audio_s = sum(len(r.audio) for _, r in requests) / SAMPLE_RATE
    print(f"{args.users} users, {audio_s:.0f} s of audio in all, engine {args.engine}, model {args.model}")
    serial_s, concurrent_s, latencies, solo, batch_sizes = [], [], [], None, {}
    sameness = []
    for round_ in range(args.rounds):
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
        print(f"round {round_ + 1}: one at a time {serial_s[-1]:.2f} s, all at once {concurrent_s[-1]:.2f} s")

    for (name, r), s, trace in zip(requests, sameness, solo):
        verdict = "identical" if s.identical else (
            f"float diff {s.max_float_diff:.2g} at {s.where}" if not s.differences else f"DIFFERS: {s.differences[0]}")
        print(f"  {name:32s} {r.options.strategy:6s} {trace.duration_s:5.1f} s  {verdict}")
    growth = None
    if args.memory_runs:
        start_mb = rss_mb()
        done = 0
        while done < args.memory_runs:
            concurrent(engine, requests[: min(len(requests), args.memory_runs - done)])
            done += min(len(requests), args.memory_runs - done)
        growth = rss_mb() - start_mb
        print(f"memory across {done} more analyses: {start_mb:.0f} MB -> {rss_mb():.0f} MB")

    ratio = statistics.median(serial_s) / statistics.median(concurrent_s)
    lat = sorted(latencies)
    result = {
        "users": args.users,
        "engine": args.engine,
        "model": args.model,
        "identical_to_solo": all(s.identical for s in sameness),
        "tokens_identical_to_solo": all(not s.differences for s in sameness),
        "max_float_diff": max(s.max_float_diff for s in sameness),
        "throughput_vs_serial": round(ratio, 3),
        "serial_s": [round(x, 2) for x in serial_s],
        "concurrent_s": [round(x, 2) for x in concurrent_s],
        "p50_s": round(statistics.median(lat), 2),
        "p95_s": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 2),
        "max_s": round(lat[-1], 2),
        "batch_sizes": {str(k): v for k, v in sorted(batch_sizes.items())},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rss_growth_mb": None if growth is None else round(growth),
        "memory_runs": args.memory_runs,
        "max_batch": args.max_batch,
        "max_wait_ms": args.max_wait_ms,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
