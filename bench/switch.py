"""python bench/switch.py: why the processes that run an engine shorten the thread switch interval.

Every torch call releases the GIL. When another thread has Python work to do, the thread that made the
call waits to get the GIL back until the holder lets go, which at Python's default interval (5 ms) can
be 5 ms per call. A decoder step makes a few hundred calls. This times one decoder step of the bundled
model (whisper's own decoder, one row, 50 tokens cached), alone and beside busy Python threads, at
several switch intervals.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--intervals-ms", default="5,0.5,0.1", help="comma-separated switch intervals")
    parser.add_argument("--busy", default="0,1", help="comma-separated numbers of busy Python threads")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()

    import torch

    from whisper_inquiry.models.load import load_model

    torch.set_grad_enabled(False)
    model = load_model(args.model, "cpu")
    audio = torch.randn(1, model.dims.n_audio_ctx, model.dims.n_audio_state)
    cache, hooks = model.install_kv_cache_hooks()
    model.decoder(torch.randint(0, 50000, (1, 50)), audio, kv_cache=cache)
    prefix = {module: kv for module, kv in cache.items()}

    def step() -> None:
        cache.clear()
        cache.update(prefix)  # the same 50 cached tokens every time
        model.decoder(torch.tensor([[50256]]), audio, kv_cache=cache)

    def busy(stop: threading.Event) -> None:
        while not stop.is_set():
            sum(range(2000))

    step()
    print(f"one decoder step of {args.model}, ms (median of {args.steps})")
    for interval in (float(x) for x in args.intervals_ms.split(",")):
        sys.setswitchinterval(interval / 1000)
        for n in (int(x) for x in args.busy.split(",")):
            stop = threading.Event()
            threads = [threading.Thread(target=busy, args=(stop,), daemon=True) for _ in range(n)]
            for t in threads:
                t.start()
            times = []
            for _ in range(args.steps):
                started = time.perf_counter()
                step()
                times.append(time.perf_counter() - started)
            stop.set()
            for t in threads:
                t.join()
            times.sort()
            print(f"  switch interval {interval:g} ms, {n} busy thread(s): {times[len(times) // 2] * 1000:.1f} ms")
    for h in hooks:
        h.remove()


if __name__ == "__main__":
    main()
