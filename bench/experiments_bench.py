"""`make bench`: what the experiments cost on this machine, with the bundled tiny.en on a 30 s clip.

Times one plain greedy decode of the window (whisper's DecodingTask, nothing changed) and the full
single-head sweep (every head of every attention kind zeroed alone: 4 layers x 6 heads x 3 kinds =
72 decodes, batched per kind of change). Target from issue 11: the sweep in <= 60 s on a 2-core CPU.
Wall time on a machine shared with other work says little, so the sweep's CPU time (all threads) and
the load average are printed too. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from whisper_inquiry.bench import thirty_seconds  # noqa: E402
from whisper_inquiry.experiments.heads import sweep  # noqa: E402
from whisper_inquiry.experiments.interventions import Variant, clip_window, decode_variants  # noqa: E402
from whisper_inquiry.models.load import load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio", nargs="*", help="clips to fill 30 s with (default: the bundled 24 s passage)")
    parser.add_argument("--model", default="tiny.en")
    args = parser.parse_args()
    model = load_model(args.model, device="cpu")
    samples = thirty_seconds(args.audio)
    window = clip_window(model, samples)
    decode_variants(model, window, [Variant()])  # warm-up
    started = time.perf_counter()
    (plain,) = decode_variants(model, window, [Variant()])
    decode_s = time.perf_counter() - started
    cpu_started = time.process_time()
    result = sweep(model, samples)
    sweep_cpu_s = time.process_time() - cpu_started  # all threads: on an idle machine, wall ~ this / threads
    load = os.getloadavg()[0]
    print(f"{args.model}, {len(samples) / 16_000:.1f} s clip, {len(plain.tokens)} tokens, "
          f"{torch.get_num_threads()} torch threads, load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"one greedy decode:           {decode_s:6.1f} s")
    print(f"single-head sweep ({len(result.effects)} heads): {result.seconds:6.1f} s wall (target <= 60 s), "
          f"{sweep_cpu_s:.1f} s of CPU time")
    for e in result.effects[:5]:
        print(f"  {e.head}: {e.token_edit_distance} tokens changed, log-prob {e.logprob_change:+.2f}")
    print(json.dumps({"model": args.model, "clip_s": round(len(samples) / 16_000, 1), "decode_s": round(decode_s, 2),
                      "sweep_s": round(result.seconds, 2), "sweep_cpu_s": round(sweep_cpu_s, 2),
                      "heads": len(result.effects), "load_average": load}))


if __name__ == "__main__":
    main()
