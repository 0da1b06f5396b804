"""`python -m whisper_inquiry`: analyse a file from the shell, or list the models this machine has.

Bad input ends with `error: <one line>` on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import InquiryError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m whisper_inquiry", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyze", help="transcribe AUDIO with every internal recorded")
    a.add_argument("audio", help="an audio file (wav, flac, mp3, ogg, m4a, webm ...)")
    a.add_argument("--model", default=None, help="model name (default: the bundled tiny.en)")
    a.add_argument("--task", default="transcribe", choices=["transcribe", "translate"])
    a.add_argument("--language", default=None, help="language code; omit to detect (multilingual models)")
    group = a.add_mutually_exclusive_group()
    group.add_argument("--beam", type=int, metavar="N", help="beam search with N beams")
    group.add_argument("--temperature", type=float, metavar="T", help="sample at temperature T (best of 5)")
    a.add_argument("--no-timestamps", action="store_true", help="decode text only")
    a.add_argument("--json", metavar="OUT", help="write transcript, tokens, words and tree as JSON")
    a.add_argument("--trace", metavar="OUT", help="write the whole trace (.npz, no pickle)")
    sub.add_parser("models", help="list every Whisper model and where it would come from")
    return parser


def _analyze(args: argparse.Namespace) -> None:
    from .analyze import analyze
    from .audio import load_audio
    from .export import to_json_text
    from .models import DEFAULT_MODEL, load_model
    from .options import AnalysisOptions
    from .serialize import save_trace

    options = AnalysisOptions(
        task=args.task, language=args.language,
        strategy="beam" if args.beam else "sampling" if args.temperature else "greedy",
        beam_size=args.beam or 5, temperature=args.temperature or 0.7, timestamps=not args.no_timestamps,
    )
    audio = load_audio(args.audio)
    model = load_model(args.model or DEFAULT_MODEL)
    trace = analyze(model, audio, options)
    print(trace.text.strip())
    if args.json:
        Path(args.json).write_text(to_json_text(trace), encoding="utf-8")
    if args.trace:
        save_trace(trace, args.trace)


def _models() -> None:
    from .models import list_models

    for m in list_models():
        print(f"{m.name:16} {m.source:10} {m.detail}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "analyze":
            _analyze(args)
        else:
            _models()
    except InquiryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unwritable output path and the like
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    return 0
