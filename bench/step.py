"""`python bench/step.py`: host time of one decoding step with 1, 8 and 30 rows in flight (issue 23).

The model is one of negligible compute, so what a step costs here is the engine's own Python and the
vocabulary's matmul: random weights, whisper's shapes shrunk to one layer of width 64, but tiny.en's
vocabulary (51864 tokens) and audio context, named "random-1x64 (random weights)" and never shown as a
model. R greedy windows (timestamps on, end-of-text suppressed so all stay in flight for the whole run)
join the engine's worker at once; every step of its rows in flight is timed, and the median of the steps
with all R in flight is the figure. The floor is what no engine avoids: the unembedding, log-softmax and
top-k of R rows alone, timed in the same run, in a thread set up as the worker is.

`--before REF` also times the engine at git revision REF (a worktree of it, this same script run there
with REF's package), in the same sitting, and reports both. Ends with one JSON line:
{"ms_per_step": {"1": .., "8": .., "30": ..}, "floor_ms": {..}, "before_ms_per_step": {..} (with --before),
"beam_ms_per_step": {..} (with --beam N: the same rows as windows of beam search, whisper's own loop)}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_NAME = "random-1x64 (random weights)"


def random_model():
    """Whisper's architecture at one layer of width 64, tiny.en's vocabulary; seeded random weights."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=1, n_audio_layer=1,
                           n_vocab=51864, n_text_ctx=448, n_text_state=64, n_text_head=1, n_text_layer=1)
    model = Whisper(dims).eval()
    for name, p in model.named_parameters():
        if name.endswith("positional_embedding"):  # whisper makes the decoder's with torch.empty: garbage, NaN at times
            p.data.normal_(0, 0.02)
    model.name = MODEL_NAME
    return model


def time_steps(rows: int, steps: int, beam: int = 0) -> float:
    """Median ms of the worker's steps with all `rows` rows in flight: as many greedy windows, or with
    `beam`, rows // beam windows of beam search (whisper's own loop, in the worker's greenlets)."""
    import torch
    from whisper.decoding import DecodingOptions
    from whisper.tokenizer import get_tokenizer

    from whisper_inquiry.engine.lockstep import DecodeJob
    from whisper_inquiry.engine.worker import Worker

    model = random_model()
    eot = get_tokenizer(False).eot
    options = DecodingOptions(language="en", fp16=False, sample_len=steps, suppress_tokens=[-1, eot],
                              beam_size=beam or None)
    windows = rows // beam if beam else rows
    worker = Worker(model, max_batch=rows, max_wait_ms=0.0)
    timed: list[float] = []
    step = worker.rows.step

    def timed_step() -> None:
        full = worker.rows.windows_in_flight() == windows
        started = time.perf_counter()
        step()
        if full:
            timed.append(time.perf_counter() - started)

    worker.rows.step = timed_step
    generator = torch.Generator().manual_seed(1)
    jobs = [DecodeJob(torch.randn(80, 3000, generator=generator), options) for _ in range(windows)]
    threads = [threading.Thread(target=worker.submit, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    worker.close()
    assert len(timed) > steps // 2, f"only {len(timed)} steps had all {rows} rows in flight"
    return 1000 * statistics.median(timed[1:])  # the first full step still holds a window's first pass


def floor_ms(rows: int, repeats: int = 50) -> float:
    """Median ms of the unembedding, log-softmax and top-k of `rows` rows of width 64, vocabulary 51864."""
    import torch

    from whisper_inquiry.engine.unembed import unembed

    weight = torch.randn(51864, 64)
    x = torch.randn(rows, 1, 64)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        logits = unembed(x, weight)
        logits.log_softmax(-1).topk(10, dim=-1)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def floor_in_a_worker(rows: int) -> float:
    """`floor_ms` in a thread set up as the engine's worker sets itself up (every core, where the package
    has `threads.use_every_core`), so the floor and the step run under the same threading."""
    from whisper_inquiry.engine import threads

    out: list[float] = []

    def run() -> None:
        getattr(threads, "use_every_core", lambda: None)()
        out.append(floor_ms(rows))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return out[0]


def measure(rows: list[int], steps: int, beam: int = 0) -> dict:
    out = {"ms_per_step": {str(r): round(time_steps(r, steps), 2) for r in rows},
           "floor_ms": {str(r): round(floor_in_a_worker(r), 2) for r in rows}}
    if beam:
        out["beam_size"] = beam
        out["beam_ms_per_step"] = {str(r): round(time_steps(r, steps, beam), 2) for r in rows}
    return out


def measure_at(ref: str, rows: list[int], steps: int) -> dict:
    """This script, run against the package at git revision `ref` (a temporary worktree)."""
    with tempfile.TemporaryDirectory(prefix="step-before-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), ref], check=True)
        try:
            env = {**os.environ, "PYTHONPATH": str(tree)}
            out = subprocess.run([sys.executable, __file__, "--rows", ",".join(map(str, rows)), "--steps",
                                  str(steps), "--package", str(tree)], env=env, check=True, capture_output=True,
                                 text=True).stdout
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)
    return json.loads(out.strip().splitlines()[-1])


def prepare_process() -> None:
    """What the launchers of the package being measured do at start (an older revision may do less)."""
    from whisper_inquiry.engine import threads

    getattr(threads, "prepare_engine_process", getattr(threads, "switch_threads_often", lambda: None))()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1,8,30", help="comma-separated numbers of rows in flight")
    parser.add_argument("--steps", type=int, default=60, help="decoding steps per window")
    parser.add_argument("--before", metavar="REF", help="also time the engine at this git revision")
    parser.add_argument("--beam", type=int, default=0, metavar="N",
                        help="also time the same rows as windows of beam search of N beams (rows divisible by N)")
    parser.add_argument("--package", type=Path, default=ROOT, help=argparse.SUPPRESS)  # --before's run
    args = parser.parse_args()
    rows = [int(r) for r in args.rows.split(",")]
    if args.beam and any(r % args.beam for r in rows):
        parser.error(f"--beam {args.beam}: every number of rows must be a multiple of it")
    sys.path.insert(0, str(args.package))
    prepare_process()
    import torch

    torch.set_grad_enabled(False)
    before = measure_at(args.before, rows, args.steps) if args.before else None
    now = measure(rows, args.steps, args.beam)
    print(f"{MODEL_NAME}, {args.steps} steps per window, torch threads {torch.get_num_threads()}")
    for r in rows:
        line = f"{r:3d} rows in flight: {now['ms_per_step'][str(r)]:7.2f} ms a step"
        if before:
            line += f" (before, {args.before}: {before['ms_per_step'][str(r)]:.2f} ms)"
        if args.beam:
            line += (f"; as {r // args.beam} beam search window{'s' if r > args.beam else ''}"
                     f" of {args.beam}: {now['beam_ms_per_step'][str(r)]:.2f} ms")
        print(line + f"; floor {now['floor_ms'][str(r)]:.2f} ms")
    if before:
        now["before_ms_per_step"] = before["ms_per_step"]
        now["before"] = args.before
    print(json.dumps(now))


if __name__ == "__main__":
    main()
