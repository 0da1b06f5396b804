"""`python bench/step_filters.py`: host time of one decoding step's filters and update, whisper's per
window against whisper_inquiry.engine.step_filters over the whole batch.

Today each window in flight is its own `DecodingTask`, so a step of R windows runs whisper's
SuppressBlank, SuppressTokens, ApplyTimestampRules and GreedyDecoder.update R times on one row each.
This times that against one call of each batched function on R rows (vocabulary 51864, English-only
tokenizer, float32 logits on the CPU, rows at different positions, as in flight), at temperature 0 and
at 0.7 (sampled rows draw one by one in both, from their own generator in the batched one). Each step
gets fresh logits (the filters write in place); the copy is not timed. Prints the median wall time
per step and the median CPU time (the process's, so on a shared CPU it shows what the step costs when
the neighbours take the wall clock), and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from typing import NamedTuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from whisper.decoding import ApplyTimestampRules, GreedyDecoder, SuppressBlank, SuppressTokens  # noqa: E402
from whisper.tokenizer import get_tokenizer  # noqa: E402

from whisper_inquiry.engine.step_filters import (  # noqa: E402
    TokenizerConstants,
    apply_timestamp_rules,
    greedy_update,
    suppress_blank,
    suppress_tokens,
)

VOCAB = 51864
MAX_INITIAL_TIMESTAMP_INDEX = 50  # transcribe's default 1 s


def histories(rows: int, tokenizer, g: torch.Generator):
    """Each row a window somewhere in its decode: a prompt of its own length, then text in timestamped
    segments, 0 to 80 sampled tokens long (row 0 at its first step)."""
    ts = tokenizer.timestamp_begin
    out, begins = [], []
    for r in range(rows):
        prompt = [tokenizer.sot_prev, *torch.randint(0, tokenizer.eot, (int(torch.randint(0, 60, (1,), generator=g)),),
                                                     generator=g).tolist(), tokenizer.sot]
        sampled, t = [], ts
        for _ in range(int(torch.randint(0, 80, (1,), generator=g)) if r else 0):
            if torch.rand(1, generator=g) < 0.1:
                t = min(t + int(torch.randint(0, 40, (1,), generator=g)), VOCAB - 1)
                sampled.append(t)
            else:
                sampled.append(int(torch.randint(0, tokenizer.eot, (1,), generator=g)))
        out.append(prompt + sampled)
        begins.append(len(prompt))
    width = max(len(h) for h in out)
    tokens = torch.zeros(rows, width, dtype=torch.long)
    for r, h in enumerate(out):
        tokens[r, : len(h)] = torch.tensor(h)
    return tokens, torch.tensor([len(h) for h in out]), torch.tensor(begins)


def suppress_ids(tokenizer) -> list[int]:
    """DecodingTask's default suppress list (suppress_tokens="-1")."""
    extra = [tokenizer.transcribe, tokenizer.translate, tokenizer.sot, tokenizer.sot_prev, tokenizer.sot_lm]
    return sorted({*tokenizer.non_speech_tokens, *extra, *([tokenizer.no_speech] if tokenizer.no_speech else [])})


class Case(NamedTuple):
    tokenizer: object
    constants: TokenizerConstants
    suppress: list[int]
    suppress_tensor: torch.Tensor
    tokens: torch.Tensor
    lengths: torch.Tensor
    begins: torch.Tensor
    temperature: float
    rows_alone: list[torch.Tensor]  # each row's history alone, as its own DecodingTask holds it
    decoders: list[GreedyDecoder]
    generators: list[torch.Generator]


def whisper_step(fresh: torch.Tensor, case: Case) -> None:
    for r, (history, decoder) in enumerate(zip(case.rows_alone, case.decoders)):
        row, begin = fresh[r: r + 1], int(case.begins[r])
        SuppressBlank(case.tokenizer, begin).apply(row, history)
        SuppressTokens(case.suppress).apply(row, history)
        ApplyTimestampRules(case.tokenizer, begin, MAX_INITIAL_TIMESTAMP_INDEX).apply(row, history)
        decoder.update(history, row, torch.zeros(1))


def batched_step(fresh: torch.Tensor, case: Case) -> None:
    c, rows = case.constants, fresh.shape[0]
    suppress_blank(fresh, case.lengths, case.begins, c.blank, c.eot)
    suppress_tokens(fresh, case.suppress_tensor)
    apply_timestamp_rules(fresh, case.tokens, case.lengths, case.begins, MAX_INITIAL_TIMESTAMP_INDEX, eot=c.eot,
                          timestamp_begin=c.timestamp_begin, no_timestamps=c.no_timestamps)
    greedy_update(fresh, torch.zeros(rows), torch.zeros(rows, dtype=torch.bool), eot=c.eot,
                  temperature=case.temperature, generators=case.generators)


def timed(step, logits: torch.Tensor, steps: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of `step` on a fresh copy of the logits."""
    wall, cpu = [], []
    for _ in range(steps + 2):  # two warm-up steps
        fresh = logits.clone()
        w, c = time.perf_counter(), time.process_time()
        step(fresh)
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall[2:]) * 1e3, statistics.median(cpu[2:]) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1,8,30", help="comma-separated batch sizes")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)

    tokenizer = get_tokenizer(False)
    c = TokenizerConstants.of(tokenizer)
    ids = suppress_ids(tokenizer)
    g = torch.Generator().manual_seed(0)
    print(f"load average {os.getloadavg()[0]:.2f}, {args.threads} torch thread(s), vocabulary {VOCAB}, "
          f"median of {args.steps} steps")
    result = {"bench": "step_filters", "vocab": VOCAB, "threads": args.threads, "steps": args.steps,
              "load_avg": round(os.getloadavg()[0], 2), "ms_per_step": {}}
    for rows in [int(r) for r in args.rows.split(",")]:
        tokens, lengths, begins = histories(rows, tokenizer, g)
        logits = torch.randn(rows, VOCAB, generator=g) * 3
        for temperature in (0.0, 0.7):
            case = Case(tokenizer, c, ids, torch.tensor(ids), tokens, lengths, begins, temperature,
                        [tokens[r: r + 1, : int(lengths[r])] for r in range(rows)],
                        [GreedyDecoder(temperature, c.eot) for _ in range(rows)],
                        [torch.Generator().manual_seed(r) for r in range(rows)])
            whisper_ms = timed(partial(whisper_step, case=case), logits, args.steps)
            batched_ms = timed(partial(batched_step, case=case), logits, args.steps)
            print(f"{rows:3d} rows, temperature {temperature}: whisper per row {whisper_ms[0]:7.2f} ms "
                  f"(cpu {whisper_ms[1]:7.2f}), batched {batched_ms[0]:7.2f} ms (cpu {batched_ms[1]:7.2f}), "
                  f"x{whisper_ms[0] / batched_ms[0]:.2f}")
            result["ms_per_step"][f"{rows}@{temperature}"] = {
                "whisper": round(whisper_ms[0], 3), "batched": round(batched_ms[0], 3),
                "whisper_cpu": round(whisper_ms[1], 3), "batched_cpu": round(batched_ms[1], 3)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
