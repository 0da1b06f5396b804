"""`make live-load` (python bench/live.py): several Live listeners at once, through the engine the app uses.

Each simulated listener speaks a different stream (the bundled English clips in another order and
speed) in real time: its buffer holds what it has said so far, at most the newest 30 s. Like the Live
page it asks the engine for the buffer every 1.5 s, or as soon as its last answer came if that took
longer, and "redraws" when the answer comes. The same streams are run twice on one engine, with the
last refresh's tokens as a draft (what the page does) and without, alternating so a drifting machine
treats both alike. Prints the time between redraws per listener (p50, p95, max), the engine's time per
refresh and the decoder passes per token. Ends with ONE JSON line.

A third kind, "stream", is what the Live page now runs: each listener a `streaming.Streamer`
(LocalAgreement-2, 1 s chunks), fed what was said since its last refresh, its buffer trimmed at committed
sentences, every look timed (word timings and attention, for the policy) and prompted with the committed
text that has left the buffer.

The browser adds its own cost on top: on this 2-core machine four headless Chromiums with fake
microphones take most of one core (tests/test_browser.py's four-listener test prints its redraw gaps).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from whisper_inquiry.audio.load import SAMPLE_RATE, load_audio  # noqa: E402
from whisper_inquiry.audio.perturb import Perturbation, apply  # noqa: E402
from whisper_inquiry.audio.samples import sample_named  # noqa: E402
from whisper_inquiry.engine.core import Engine  # noqa: E402
from whisper_inquiry.engine.threads import prepare_engine_process  # noqa: E402
from whisper_inquiry.instruments.live import next_draft  # noqa: E402
from whisper_inquiry.models.load import load_model  # noqa: E402
from whisper_inquiry.streaming.stream import Streamer, engine_listen  # noqa: E402

NEW_STREAM_S = 5.0  # components/streaming.py's: a stream begun mid-speech starts from the last 5 s

REFRESH_S = 1.5  # pages/go_further/live.py's refresh


def streams(n: int) -> list[np.ndarray]:
    """n different speech streams of 45 s or more: the English clips rotated, every other one sped up."""
    names = ["english_story", "english_weather", "english_numbers"]
    clips = [load_audio(sample_named(name).path).samples for name in names]
    out = []
    for i in range(n):
        order = clips[i % 3:] + clips[:i % 3]
        x = np.concatenate(order * 2)
        out.append(apply(x, Perturbation("speed", 1.1)) if i % 2 else x)
    return out


def run(engine: Engine, voices: list[np.ndarray], seconds: float, drafts: bool, start_s: float,
        stream: bool = False) -> dict:
    """All listeners at once for `seconds` of wall time, each stream `start_s` in when they begin."""
    gaps, answers, passes, tokens = [[] for _ in voices], [], [0], [0]
    first: list[float] = []  # from a listener's start to its first words
    lock = threading.Lock()
    began = time.perf_counter()
    opened = [began + i * REFRESH_S / len(voices) for i in range(len(voices))]  # sessions open one by one

    def listener(i: int) -> None:
        draft: tuple[int, ...] = ()
        last_redraw = None
        # as the page begins a stream while the microphone is on: from its last NEW_STREAM_S seconds
        streamer = Streamer(engine_listen(engine), keep_updates=40)
        fed = int(max(0.0, start_s - NEW_STREAM_S) * SAMPLE_RATE)
        time.sleep(max(0.0, opened[i] - time.perf_counter()))
        while (now := time.perf_counter()) - began < seconds:
            said = int((start_s + now - began) * SAMPLE_RATE)
            if stream:
                streamer.feed(voices[i][max(fed, said - 30 * SAMPLE_RATE):said])
                fed = said
                streamer.update()
                heard = streamer.last_heard
            else:
                buffer = voices[i][max(0, said - 30 * SAMPLE_RATE):said]
                heard = engine.listen(buffer, draft=draft if drafts else ())
            done = time.perf_counter()
            if last_redraw is not None:
                gaps[i].append(done - last_redraw)
            else:
                first.append(done - opened[i])
            last_redraw = done
            answers.append(done - now)
            if drafts:
                draft = next_draft(draft, heard)
            with lock:
                if heard.passes is not None:
                    passes[0] += heard.passes
                    tokens[0] += len(heard.tokens) + 1
            time.sleep(max(0.0, now + REFRESH_S - time.perf_counter()))

    threads = [threading.Thread(target=listener, args=(i,)) for i in range(len(voices))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ended = time.perf_counter()
    for per, since in zip(gaps, opened):  # a listener that redrew once or never: its whole run is one gap
        if not per:
            per.append(ended - since)
    every = sorted(g for per in gaps for g in per)
    return {
        "redraw_p50_s": round(statistics.median(every), 2),
        "redraw_p95_s": round(every[int(0.95 * (len(every) - 1))], 2),
        "redraw_max_s": round(every[-1], 2),
        "per_listener_max_s": [round(max(per), 2) for per in gaps],
        "answer_mean_s": round(statistics.mean(answers), 2),
        "first_words_max_s": round(max(first, default=seconds), 2),
        "passes_per_token": round(passes[0] / tokens[0], 3) if tokens[0] else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listeners", type=int, default=4)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--seconds", type=float, default=30.0, help="wall time of each run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each kind, alternating")
    parser.add_argument("--lockstep", action="store_true", help="the engine without continuous batching, to compare")
    parser.add_argument("--loop", action="store_true",
                        help="every window in whisper's own loop (no batched step: the engine before it), to compare")
    parser.add_argument("--draft-when-busy", action="store_true",
                        help="keep a refresh's draft beside other windows (alone between two steps), as before")
    parser.add_argument("--drafted-rows", action="store_true",
                        help="drafted refreshes as rows of the continuous batch (default: each decodes alone)")
    args = parser.parse_args()
    prepare_engine_process()  # as the app's launcher does: the listeners' threads share the process
    engine = Engine(load_model(args.model), continuous=not args.lockstep, drafted_rows=args.drafted_rows,
                    batched=not args.loop, draft_when_busy=args.draft_when_busy)
    voices = streams(args.listeners)
    engine.listen(voices[0][:5 * SAMPLE_RATE])  # the first decode's one-time costs, before any clock
    results: dict[str, list[dict]] = {"stream": [], "drafts": [], "no drafts": []}
    for r in range(args.rounds):
        for kind in results:
            # the first round starts while the buffers fill, the next once they are full and sliding
            out = run(engine, voices, args.seconds, kind != "no drafts", start_s=8.0 if r == 0 else 34.0,
                      stream=kind == "stream")
            results[kind].append(out)
            print(f"round {r + 1}, {kind}: {out}", flush=True)
    summary = {"listeners": args.listeners, "model": args.model, "refresh_s": REFRESH_S,
               "continuous": not args.lockstep, "drafted_rows": args.drafted_rows, "batched_step": not args.loop,
               "draft_when_busy": args.draft_when_busy}
    for kind, runs in results.items():
        key = kind.replace(" ", "_")
        summary[f"{key}_redraw_p50_s"] = round(statistics.median(r["redraw_p50_s"] for r in runs), 2)
        summary[f"{key}_redraw_max_s"] = max(r["redraw_max_s"] for r in runs)
        summary[f"{key}_answer_mean_s"] = round(statistics.mean(r["answer_mean_s"] for r in runs), 2)
        summary[f"{key}_first_words_max_s"] = max(r["first_words_max_s"] for r in runs)
    drafted = [r["passes_per_token"] for r in results["drafts"] if r["passes_per_token"] is not None]
    # refreshes that ran without their draft (others were decoding: worker._sort) are not counted
    summary["passes_per_token"] = statistics.mean(drafted) if drafted else None
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
