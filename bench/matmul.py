"""`python bench/matmul.py`: the decoder's last matmul in whisper's form (`x @ W.T`) against `W @ x.T`.

On the bundled models' token embeddings (tiny.en, base), for 1, 2, 8 and 30 rows: the median of 30 calls
each, both forms in the same sitting. `engine/unembed.py` uses whichever form this says is faster on the
machines we run on (docs/performance.md, "The decoder's last matmul, on a CPU"). Ends with one JSON line.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def median_ms(call, repeats: int = 30) -> float:
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    import torch

    from whisper_inquiry.models.load import load_model

    torch.set_grad_enabled(False)
    out: dict[str, dict[str, list[float]]] = {}
    for name in ("tiny.en", "base"):
        weight = load_model(name).decoder.token_embedding.weight
        out[name] = {"whisper": [], "transposed": []}
        for rows in (1, 2, 8, 30):
            x = torch.randn(rows, 1, weight.shape[1])
            flat = x.reshape(rows, -1) if rows > 1 else x.reshape(1, -1).repeat(2, 1)
            whisper_ms = median_ms(lambda x=x, w=weight: (x @ w.T).float())
            transposed_ms = median_ms(lambda f=flat, w=weight, n=rows: (w @ f.T).T[:n].contiguous())
            out[name]["whisper"].append(round(whisper_ms, 2))
            out[name]["transposed"].append(round(transposed_ms, 2))
            print(f"{name:8s} {rows:3d} rows: x @ W.T {whisper_ms:6.2f} ms   W @ x.T {transposed_ms:6.2f} ms")
    print(json.dumps({"rows": [1, 2, 8, 30], **out}))


if __name__ == "__main__":
    main()
