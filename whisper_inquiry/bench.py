"""`python -m whisper_inquiry.bench`: what instrumentation costs, against plain openai-whisper in one run.

Times a 30 s window on this machine with the bundled model: plain `whisper.decode` on the mel,
plain `whisper.transcribe`, and `analyze` (everything recorded), each the median of several runs after
a warm-up. Ends with one JSON line. faster-whisper is timed too when it happens to be installed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
import whisper

from whisper_inquiry.analyze import analyze
from whisper_inquiry.audio.load import SAMPLE_RATE, load_audio
from whisper_inquiry.audio.samples import sample_named
from whisper_inquiry.models.load import BUNDLED, _bundled_files, load_model
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.trace.derived import full_head, head_summaries, trace_nbytes
from whisper_inquiry.trace.serialize import trace_to_bytes


def _median_s(fn, repeats: int) -> float:
    return _interleaved([fn], repeats)[0]


def _interleaved(fns: list, repeats: int) -> list[float]:
    """Median seconds of each function, run in turn in every round, so a slow spell of the machine
    weighs on all of them alike instead of on whichever happened to run then."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times):
            started = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - started)
    return [statistics.median(t) for t in times]


def thirty_seconds(paths: list[str], limit_s: float = 26.0) -> np.ndarray:
    """Speech filling one 30 s window: whole clips (the given files, else the bundled 24 s passage) in
    turn while they fit, so the last sentence ends inside the window and transcribe needs just one."""
    sources = paths or [str(sample_named("english_story").path)]
    clips = [load_audio(p).samples for p in sources]
    out: list[np.ndarray] = []
    used = 0
    for i in range(100):
        clip = clips[i % len(clips)]
        if used + len(clip) > limit_s * SAMPLE_RATE:
            break
        out.append(clip)
        used += len(clip)
    return np.concatenate(out)


def _faster_whisper_s(name: str, audio: np.ndarray, repeats: int) -> float | None:
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        return None
    files = _bundled_files(BUNDLED[name]) if name in BUNDLED else None
    if files is None or len(files[0]) != 1:
        return None
    threads = torch.get_num_threads()
    model = WhisperModel(str(files[0][0].parent), device="cpu", compute_type="float32", cpu_threads=threads)

    def run():
        segments, _ = model.transcribe(audio, beam_size=1, temperature=0.0, language="en")
        list(segments)

    run()
    return _median_s(run, repeats)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m whisper_inquiry.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--audio", nargs="*", default=[], help="speech to fill the 30 s window (default: bundled)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    model = load_model(args.model)
    audio = thirty_seconds(args.audio)
    fp16 = model.device.type == "cuda"
    options = AnalysisOptions(fallback=False)  # greedy, one attempt: the same work as one whisper.decode
    kwargs = options.transcribe_kwargs(model.is_multilingual, fp16)
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(audio), model.dims.n_mels).to(model.device)
    decode_options = whisper.DecodingOptions(language=kwargs["language"], fp16=fp16)

    trace = analyze(model, audio, options)  # warm-up: numba compiles whisper's DTW on first use
    whisper.decode(model, mel, decode_options)
    decode_s, transcribe_s, analyze_s = _interleaved([
        lambda: whisper.decode(model, mel, decode_options),
        lambda: whisper.transcribe(model, audio, **kwargs),
        lambda: analyze(model, audio, options),
    ], args.repeats)
    beam = AnalysisOptions(fallback=False, strategy="beam", beam_size=5)
    beam_decode = whisper.DecodingOptions(language=kwargs["language"], fp16=fp16, beam_size=5)
    beam_decode_s, beam_analyze_s = _interleaved([
        lambda: whisper.decode(model, mel, beam_decode),
        lambda: analyze(model, audio, beam),
    ], max(1, args.repeats // 2))

    fresh = analyze(model, audio, options)
    started = time.perf_counter()
    head_summaries(fresh, 0)  # per-head thumbnails, entropy and distance: computed once, on the first view that asks
    summaries_s = time.perf_counter() - started

    window = trace.windows[0]
    heads = [(layer, head) for layer in range(window.encoder.n_layer) for head in (0, window.encoder.n_head - 1)]
    head_s = None
    if window.encoder.qk is not None:
        head_s = max(_median_s(lambda lh=lh: full_head(trace, 0, *lh), 3) for lh in heads)
    result = {
        "model": args.model,
        "device": str(model.device),
        "threads": torch.get_num_threads(),
        "audio_s": round(len(audio) / SAMPLE_RATE, 2),
        "windows": len(trace.windows),
        "tokens": len(window.final.steps),
        "decode_s": round(decode_s, 3),
        "transcribe_s": round(transcribe_s, 3),
        "analyze_s": round(analyze_s, 3),
        "overhead_ratio": round(analyze_s / decode_s, 3),
        "overhead_vs_transcribe": round(analyze_s / transcribe_s, 3),
        "head_summaries_s": round(summaries_s, 3),
        "overhead_ratio_with_summaries": round((analyze_s + summaries_s) / decode_s, 3),
        "beam5_decode_s": round(beam_decode_s, 3),
        "beam5_analyze_s": round(beam_analyze_s, 3),
        "beam5_overhead_ratio": round(beam_analyze_s / beam_decode_s, 3),
        "analysis_stages_ms": {k: round(v) for k, v in trace.timings_ms.items()},
        "trace_mb": round(trace_nbytes(trace) / 1e6, 2),
        "trace_file_mb": round(len(trace_to_bytes(trace)) / 1e6, 2),
        "head_on_demand_s": None if head_s is None else round(head_s, 4),
        "faster_whisper_s": _faster_whisper_s(args.model, audio, args.repeats),
        "text": trace.text.strip()[:80] + "...",
    }
    if result["faster_whisper_s"] is not None:
        result["faster_whisper_s"] = round(result["faster_whisper_s"], 3)
    for key, value in result.items():
        if key != "analysis_stages_ms":
            print(f"{key:24} {value}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
