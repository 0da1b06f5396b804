"""A corpus run with every instrument against whisper.transcribe called on each file in a loop.

Same process, same model, same sitting: first the plain loop (openai-whisper's own transcribe, one file after
another, no instruments), then the corpus through the engine (`corpus.run.run_corpus`: every clip analysed
with everything recorded, several in flight so the engine batches them, each trace written to disk). Then
the memory check: a corpus `--memory` clips long (the demo's clips copied with a little dither each, so every
copy is new content and really runs), its resident set read after 20 clips and at the end.

Every hypothesis must equal the plain loop's text for that file (the engine's analysis is whisper.transcribe,
token for token). Ends with one JSON line:
{"clips", "ratio_vs_plain_loop", "rss_mb_after_20", "rss_mb_after_200", ...}.

    .venv/bin/python bench/corpus.py [--model tiny.en] [--scale 10] [--memory 200]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from whisper_inquiry.engine.threads import prepare_engine_process, use_cores, use_every_core  # noqa: E402

prepare_engine_process()

import whisper  # noqa: E402

from whisper_inquiry.audio.load import load_audio  # noqa: E402
from whisper_inquiry.audio.samples import DEMO_CORPUS  # noqa: E402
from whisper_inquiry.corpus.read import open_corpus  # noqa: E402
from whisper_inquiry.corpus.run import ResultStore, run_corpus  # noqa: E402
from whisper_inquiry.corpus.table import rows_of, summary  # noqa: E402
from whisper_inquiry.engine.core import Engine  # noqa: E402
from whisper_inquiry.models.load import load_model  # noqa: E402
from whisper_inquiry.options import AnalysisOptions  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scaled_corpus(folder: Path, copies: int) -> Path:
    """The demo corpus `copies` times over, each copy with its own faint dither (new content, the same speech),
    and a manifest of them all."""
    lines = [json.loads(line) for line in (DEMO_CORPUS / "manifest.jsonl").read_text().splitlines() if line.strip()]
    rng = np.random.default_rng(0)
    out = []
    for copy in range(copies):
        for row in lines:
            samples, rate = sf.read(DEMO_CORPUS / row["audio_filepath"], dtype="float32")
            if copy:
                samples = samples + rng.normal(0, 3e-4, len(samples)).astype("float32")
            name = f"{copy:03d}_{Path(row['audio_filepath']).stem}.flac"
            sf.write(folder / name, samples, rate)
            out.append(json.dumps({**row, "audio_filepath": name}))
    (folder / "manifest.jsonl").write_text("\n".join(out) + "\n")
    return folder


def plain_loop(model, corpus) -> tuple[float, list[str]]:
    """whisper.transcribe on each file, on every core (the process leaves torch one thread per thread, for the
    engine's worker: a plain loop in this thread would otherwise run on one core)."""
    kwargs = AnalysisOptions().transcribe_kwargs(model.is_multilingual, fp16=False)
    texts = []
    had = use_every_core()
    try:
        started = time.perf_counter()
        for clip in corpus.clips:
            texts.append(whisper.transcribe(model, load_audio(clip.path).samples, **kwargs)["text"].strip())
        return time.perf_counter() - started, texts
    finally:
        if had is not None:
            use_cores(had)


def exact_against_solo(model, corpus, runs, texts) -> tuple[list[str], list[str]]:
    """Clips whose hypothesis is not the plain loop's text, and of those, the ones whose tokens also differ
    from the clip's own analysis alone (`analyze`: seeded fallback samples, so a clip that fell back to
    sampling draws other random numbers than whisper.transcribe's global generator; the solo analysis is the
    reference the engine must equal)."""
    from whisper_inquiry.analyze import analyze
    from whisper_inquiry.trace.serialize import load_trace

    differ = [i for i, (r, t) in enumerate(zip(runs, texts)) if r is None or r.hypothesis != t]
    wrong = []
    for i in differ:
        alone = analyze(model, corpus.clips[i].path, AnalysisOptions())
        kept = load_trace(runs[i].trace) if runs[i] else None
        if kept is None or [w.final.tokens for w in kept.windows] != [w.final.tokens for w in alone.windows]:
            wrong.append(corpus.clips[i].audio)
    return [corpus.clips[i].audio for i in differ], wrong


def engine_run(engine, corpus, store_dir: Path, model_name: str, marks=(20,)) -> tuple[float, list, dict]:
    rss: dict[int, float] = {}
    done = [0]

    def on_result(_i, _run):
        done[0] += 1
        if done[0] in marks:
            rss[done[0]] = rss_mb()

    started = time.perf_counter()
    runs = run_corpus(engine, corpus, ResultStore(store_dir, model_name, AnalysisOptions()), on_result=on_result)
    return time.perf_counter() - started, runs, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--scale", type=int, default=1, help="the demo corpus this many times over (distinct copies)")
    parser.add_argument("--memory", type=int, default=200, help="clips in the memory run (0: none)")
    args = parser.parse_args()
    model = load_model(args.model, device="cpu")
    engine = Engine(model)
    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as tmp:
        tmp = Path(tmp)
        (tmp / "clips").mkdir()
        corpus = open_corpus(scaled_corpus(tmp / "clips", args.scale) if args.scale > 1 else DEMO_CORPUS)
        demo = open_corpus(DEMO_CORPUS)
        warm = dataclasses.replace(demo, clips=demo.clips[:2])
        plain_loop(model, warm)
        engine_run(engine, warm, tmp / "warm", args.model)
        plain_s, texts = plain_loop(model, corpus)
        corpus_s, runs, _ = engine_run(engine, corpus, tmp / "store", args.model)
        store = ResultStore(tmp / "store", args.model, AnalysisOptions())
        runs = [dataclasses.replace(r, trace=str(store.trace_path(r))) if r and r.trace else r for r in runs]
        differ, wrong = exact_against_solo(model, corpus, runs, texts)
        audio_s = sum(r.duration_s for r in runs if r)
        total = summary(rows_of(corpus, runs))
        print(f"{len(corpus.clips)} clips, {audio_s:.0f} s of audio, {args.model} on the CPU")
        print(f"  whisper.transcribe in a loop:        {plain_s:6.1f} s")
        print(f"  corpus run, every instrument, disk: {corpus_s:6.1f} s   ratio {corpus_s / plain_s:.2f}")
        fell_back = sum(1 for c, r in zip(corpus.clips, runs) if c.audio in differ and r and r.fallback_attempts)
        print(f"  hypotheses differing from the loop's text: {len(differ)}, of which {fell_back} fell back to "
              f"sampling; tokens differing from the clip's analysis alone: {len(wrong)} {wrong[:5]}")
        print(f"  corpus WER {total.wer:.1%} ({total.interval[0]:.1%} to {total.interval[1]:.1%})")
        memory = {}
        if args.memory:
            (tmp / "memory").mkdir()
            big = open_corpus(scaled_corpus(tmp / "memory", -(-args.memory // len(demo.clips))))
            big = dataclasses.replace(big, clips=big.clips[:args.memory])
            _, _, rss = engine_run(engine, big, tmp / "memory-store", args.model, marks=(20, args.memory))
            memory = {"rss_mb_after_20": round(rss[20], 1), f"rss_mb_after_{args.memory}": round(rss[args.memory], 1)}
            print(f"  memory, {args.memory} clips: {rss[20]:.0f} MB after 20, {rss[args.memory]:.0f} MB after "
                  f"{args.memory} ({rss[args.memory] / rss[20] - 1:+.1%})")
    print(json.dumps({"clips": len(corpus.clips), "model": args.model, "plain_loop_s": round(plain_s, 2),
                      "corpus_s": round(corpus_s, 2), "ratio_vs_plain_loop": round(corpus_s / plain_s, 3),
                      "differ_from_plain_loop": len(differ), "differ_from_solo_analysis": len(wrong), **memory}))
    engine.close(timeout_s=30)  # the worker thread ends before the interpreter does


if __name__ == "__main__":
    main()
