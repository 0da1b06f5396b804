"""`python bench/probes_bench.py`: how long occlusion saliency takes on a 30 s clip, batched.

Target of issue 12: the default window and stride finish a 30 s clip with tiny.en in at most 20 s on
the 2-core CPU. Times `occlude` end to end (reference decode, DTW, every variant scored) after a
warm-up on a short clip (numba's first DTW compile and the padding states are once per process), for
the default fill and, unless --fills says otherwise, the audio fills too (one encoder pass per
variant). Prints the machine's load and the CPU seconds used beside the wall time: on a shared CPU
the wall time depends on the neighbours, while CPU seconds / threads bounds what an idle machine takes.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from whisper_inquiry.bench import thirty_seconds  # noqa: E402
from whisper_inquiry.experiments.occlusion import OcclusionOptions, occlude  # noqa: E402
from whisper_inquiry.models.load import load_model  # noqa: E402

TARGET_S = 20.0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--audio", nargs="*", default=[], help="speech to fill the 30 s window (default: bundled)")
    parser.add_argument("--fills", default="padding,silence", help="comma-separated fills to time")
    args = parser.parse_args(argv)
    model = load_model(args.model, device="cpu")
    audio = thirty_seconds(args.audio)
    occlude(model, audio[: 3 * 16000], OcclusionOptions(window_s=1.0, stride_s=1.0))  # warm-up
    result = {"model": args.model, "clip_s": round(len(audio) / 16000, 2), "torch_threads": torch.get_num_threads(),
              "cpus": os.cpu_count(), "load_avg_1min_before": round(os.getloadavg()[0], 2), "target_s": TARGET_S}
    for fill in args.fills.split(","):
        options = OcclusionOptions(fill=fill)
        started, cpu_started = time.perf_counter(), time.process_time()
        found = occlude(model, audio, options)
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
        result[fill] = {"window_s": options.window_s, "stride_s": options.stride_s, "variants": len(found.starts_s),
                        "tokens": len(found.tokens), "seconds": round(seconds, 2),
                        "reference_seconds": round(found.reference_s, 2), "cpu_seconds": round(cpu_s, 2),
                        "within_target": seconds <= TARGET_S}
        print(f"occlusion, fill {fill}: {len(found.starts_s)} windows of {options.window_s:g} s every "
              f"{options.stride_s:g} s over {result['clip_s']} s, {len(found.tokens)} tokens: {seconds:.1f} s wall "
              f"({found.reference_s:.1f} s of it the reference decode), {cpu_s:.1f} CPU s "
              f"(target {TARGET_S:g} s wall)", flush=True)
    result["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
