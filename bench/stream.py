"""Streaming policies measured: each clip replayed as a stream, its committed transcript against the offline
transcript of the same audio, and every committed word's lag.

For each policy and chunk size, every clip is fed to a stream (`streaming.stream.replay`, through the
in-process engine as the Live page does) and scored: the committed transcript against plain
`whisper.transcribe` on the whole clip (WER after whisper's English normaliser, word-weighted over the
clips), and the lag of every committed word (the audio received when it was committed, less its end in
the audio; the decode's own time is left out, as in whisper_streaming's computation-unaware simulation,
and reported apart as the mean decode time per update). Clips: the bundled English samples, the real
speech in ../shared/audio when this machine has it, and a long clip made of them all (past 30 s, so the
buffer must be trimmed). Prints a markdown table and ends with one JSON line.

    .venv/bin/python bench/stream.py [--model tiny.en] [--settings la2:1,alignatt25:1,...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from whisper_inquiry.engine.threads import prepare_engine_process  # noqa: E402

prepare_engine_process()

import whisper  # noqa: E402

from whisper_inquiry.audio.load import SAMPLE_RATE, load_audio  # noqa: E402
from whisper_inquiry.audio.samples import sample_named  # noqa: E402
from whisper_inquiry.corpus.score import score  # noqa: E402
from whisper_inquiry.engine.core import Engine  # noqa: E402
from whisper_inquiry.streaming.policy import AlignAtt, LocalAgreement  # noqa: E402
from whisper_inquiry.streaming.stream import StreamOptions, engine_listen, replay  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "audio"
DEFAULT_SETTINGS = "la2:0.5,la2:1,la2:2,la3:1,alignatt25:0.5,alignatt25:1,alignatt25:2,alignatt10:1"


def clips() -> dict[str, np.ndarray]:
    out = {name: load_audio(sample_named(name).path).samples
           for name in ("english_weather", "english_numbers", "english_story")}
    for path in sorted(SHARED.glob("*")) if SHARED.is_dir() else []:
        if path.suffix in (".wav", ".flac"):
            out[path.stem] = load_audio(path).samples
    gap = np.zeros(SAMPLE_RATE // 2, np.float32)
    out["long (all of the above)"] = np.concatenate([part for clip in list(out.values()) for part in (clip, gap)])
    return out


def parse(setting: str) -> StreamOptions:
    policy, chunk = setting.split(":")
    if policy.startswith("la"):
        return StreamOptions(LocalAgreement(int(policy[2:])), float(chunk))
    return StreamOptions(AlignAtt(int(policy[len("alignatt"):])), float(chunk))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--settings", default=DEFAULT_SETTINGS)
    args = parser.parse_args()
    engine = Engine.load(args.model)
    audio = clips()
    offline = {name: whisper.transcribe(engine.model, samples, language="en", fp16=False)["text"]
               for name, samples in audio.items()}
    print(f"{args.model}; clips: " + ", ".join(f"{n} ({len(s) / SAMPLE_RATE:.1f} s)" for n, s in audio.items()))
    rows = []
    for setting in args.settings.split(","):
        options = parse(setting)
        errors = words = updates = 0
        lags, decode, per_clip = [], [], {}
        started = time.perf_counter()
        for name, samples in audio.items():
            result = replay(engine_listen(engine), samples, options)
            s = score(offline[name], result.text, "en")
            n_ref = len(s.reference.split())
            errors += round((s.wer or 0) * n_ref)
            words += n_ref
            lags += result.lags_s().tolist()
            decode += [u.decode_s for u in result.updates]
            updates += len(result.updates)
            per_clip[name] = round(s.wer or 0, 3)
        rows.append({"policy": options.policy.name, "chunk_s": options.chunk_s, "wer_vs_offline": errors / words,
                     "lag_median_s": float(np.median(lags)), "lag_p90_s": float(np.percentile(lags, 90)),
                     "decode_mean_s": float(np.mean(decode)), "updates": updates, "per_clip_wer": per_clip,
                     "wall_s": time.perf_counter() - started})
        r = rows[-1]
        print(f"{r['policy']:<36} chunk {r['chunk_s']:<4g} WER {r['wer_vs_offline']:6.1%}  lag median "
              f"{r['lag_median_s']:.2f} s, p90 {r['lag_p90_s']:.2f} s  decode {r['decode_mean_s']:.2f} s/update  "
              f"{per_clip}", flush=True)
    engine.close(timeout_s=60)
    print()
    print("| policy | chunk (s) | WER vs offline | lag median (s) | lag p90 (s) | decode per update (s) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['policy']} | {r['chunk_s']:g} | {r['wer_vs_offline']:.1%} | {r['lag_median_s']:.2f} | "
              f"{r['lag_p90_s']:.2f} | {r['decode_mean_s']:.2f} |")
    print(json.dumps({"model": args.model, "clips": {n: round(len(s) / SAMPLE_RATE, 1) for n, s in audio.items()},
                      "rows": rows}))


if __name__ == "__main__":
    main()
