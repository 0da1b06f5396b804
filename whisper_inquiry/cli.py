"""`python -m whisper_inquiry`: analyse a file from the shell, or list the models this machine has.

Bad input ends with `error: <one line>` on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from whisper_inquiry.errors import InquiryError
from whisper_inquiry.options import TASKS

MODEL_HELP = ("a model name, a Hugging Face checkpoint's folder or repo id (from the local cache), or an "
              "openai-whisper .pt file (default: the bundled tiny.en)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m whisper_inquiry", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyze", help="transcribe AUDIO with every internal recorded")
    a.add_argument("audio", help="an audio file (wav, flac, mp3, ogg, m4a, webm ...)")
    a.add_argument("--model", default=None, help=MODEL_HELP)
    a.add_argument("--task", default="transcribe", choices=TASKS)
    a.add_argument("--language", default=None, help="language code; omit to detect (multilingual models)")
    group = a.add_mutually_exclusive_group()
    group.add_argument("--beam", type=int, metavar="N", help="beam search with N beams")
    group.add_argument("--temperature", type=float, metavar="T", help="sample at temperature T (best of 5)")
    a.add_argument("--no-timestamps", action="store_true", help="decode text only")
    a.add_argument("--json", metavar="OUT", help="write transcript, tokens, words and tree as JSON")
    a.add_argument("--trace", metavar="OUT", help="write the whole trace (.npz, no pickle)")
    sub.add_parser("models", help="list every Whisper model and where it would come from")
    c = _one_line_errors(sub.add_parser("corpus", help="run a corpus of clips: error rates per clip and overall"))
    c.add_argument("path", help="a folder, a NeMo .jsonl manifest or a .zip of audio files with references")
    c.add_argument("--model", default=None, help=MODEL_HELP)
    c.add_argument("--compare", metavar="M2", default=None, help="a second model, compared clip by clip")
    c.add_argument("--json", metavar="OUT",
                   help="write rows, the corpus WER and its interval (and the same for --compare) as JSON")
    c.add_argument("--store", metavar="DIR", default=None,
                   help="where results are kept between runs (default: $WHISPER_INQUIRY_CACHE/corpus or "
                        "~/.cache/whisper_inquiry/corpus)")
    st = _one_line_errors(sub.add_parser("stream", help="replay AUDIO as a live stream: which words a streaming "
                                                         "policy commits, and when"))
    st.add_argument("audio", help="an audio file, fed in chunks as if it were being heard")
    st.add_argument("--model", default=None, help=MODEL_HELP)
    st.add_argument("--policy", default="local-agreement", choices=("local-agreement", "alignatt"))
    st.add_argument("--n", type=int, default=2, help="LocalAgreement: updates that must agree (default 2)")
    st.add_argument("--chunk", type=float, default=1.0, metavar="S",
                    help="seconds of audio between updates (whisper_streaming's --min-chunk-size; default 1)")
    st.add_argument("--frames", type=int, default=25,
                    help="AlignAtt: encoder frames (20 ms) from the end of the audio a token may not attend to "
                         "(default 25)")
    st.add_argument("--json", metavar="OUT", help="write every update and the committed words as JSON")
    _add_probe_parsers(sub)
    _add_experiment_commands(sub)
    return parser


# --- issue 12: occlusion, surgery, neurons (JSON on stdout) -------------------------------------------------

def _one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """argparse prints usage and exits 2; these subcommands print only `error: ...` and exit 2."""
    def error(message: str):
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)

    parser.error = error  # type: ignore[method-assign]
    return parser


def _add_probe_parsers(sub) -> None:
    o = _one_line_errors(sub.add_parser("occlude", help="occlusion saliency: which span each token needed (JSON)"))
    o.add_argument("audio")
    o.add_argument("--model", default=None, help=MODEL_HELP)
    o.add_argument("--window-s", type=float, default=None, help="seconds hidden at a time (default 1.0)")
    o.add_argument("--stride-s", type=float, default=None, help="seconds between windows (default 0.5)")
    o.add_argument("--fill", default=None, help="silence | noise | padding (default: padding)")
    s = _one_line_errors(sub.add_parser("surgery", help="decode with one span's encoder states replaced (JSON)"))
    s.add_argument("audio")
    s.add_argument("--model", default=None, help=MODEL_HELP)
    s.add_argument("--span", type=float, nargs=2, metavar=("START_S", "END_S"), required=True)
    n = _one_line_errors(sub.add_parser("neurons", help="encoder MLP neurons that fire most in a span (JSON)"))
    n.add_argument("audio")
    n.add_argument("--model", default=None, help=MODEL_HELP)
    n.add_argument("--layer", type=int, default=2)
    n.add_argument("--span", type=float, nargs=2, metavar=("START_S", "END_S"), required=True)
    n.add_argument("--top", type=int, default=6)


def _probe(args: argparse.Namespace) -> None:
    import json
    import time

    from whisper_inquiry.audio.load import load_audio
    from whisper_inquiry.models.load import DEFAULT_MODEL, load_model

    audio = load_audio(args.audio)
    if args.command == "occlude":
        from whisper_inquiry.experiments.occlusion import OcclusionOptions, occlude

        given = {"window_s": args.window_s, "stride_s": args.stride_s, "fill": args.fill}
        options = OcclusionOptions(**{k: v for k, v in given.items() if v is not None})
        doc = occlude(load_model(args.model or DEFAULT_MODEL), audio.samples, options).to_json()
    elif args.command == "surgery":
        from whisper_inquiry.experiments.surgery import operate

        doc = operate(load_model(args.model or DEFAULT_MODEL), audio.samples, *args.span).to_json()
    else:
        from whisper_inquiry.experiments.neurons import listen

        started = time.perf_counter()
        found = listen(load_model(args.model or DEFAULT_MODEL), audio.samples, args.layer, *args.span, args.top)
        doc = {"layer": found.layer, "span_s": [found.start_s, found.end_s], "neurons": [
            {"neuron": int(i), "selectivity": round(float(s), 4), "peak_s": round(float(p), 3)}
            for i, s, p in zip(found.neurons, found.selectivity, found.peak_s)],
            "seconds": round(time.perf_counter() - started, 3)}
    print(json.dumps(doc, ensure_ascii=False))

# --- end of issue 12 ------------------------------------------------------------------------------------------


def _analyze(args: argparse.Namespace) -> None:
    from whisper_inquiry.analyze import analyze
    from whisper_inquiry.audio.load import load_audio
    from whisper_inquiry.models.load import DEFAULT_MODEL, load_model
    from whisper_inquiry.options import AnalysisOptions
    from whisper_inquiry.trace.export import to_json_text
    from whisper_inquiry.trace.serialize import save_trace

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


def _corpus(args: argparse.Namespace) -> None:
    """Read the corpus, run it (and the second model) through an in-process engine, print the table."""
    import json
    import tempfile

    from whisper_inquiry.corpus.read import open_corpus
    from whisper_inquiry.corpus.run import ResultStore, default_store_root, run_corpus
    from whisper_inquiry.corpus.table import document, rows_of, summary
    from whisper_inquiry.engine.core import Engine
    from whisper_inquiry.engine.threads import prepare_engine_process
    from whisper_inquiry.models.load import DEFAULT_MODEL
    from whisper_inquiry.options import AnalysisOptions

    with tempfile.TemporaryDirectory(prefix="corpus-zip-") as unpacked:
        corpus = open_corpus(args.path, trusted=not str(args.path).lower().endswith(".zip"),
                             unpack_to=Path(unpacked))
        for refused in corpus.refused:
            print(f"refused: {refused}", file=sys.stderr)
        prepare_engine_process()
        root = Path(args.store) if args.store else default_store_root()
        names = [args.model or DEFAULT_MODEL] + ([args.compare] if args.compare else [])
        tables = []
        for name in names:
            engine = Engine.load(name)
            try:
                runs = run_corpus(engine, corpus, ResultStore(root, name, AnalysisOptions()),
                                  on_result=lambda i, r: print(f"  {i + 1}/{len(corpus.clips)} {r.audio}",
                                                               file=sys.stderr))
            finally:
                engine.close(timeout_s=60)  # the worker ends before the interpreter does (else: abort at exit)
            tables.append(rows_of(corpus, runs))
    for name, rows in zip(names, tables):
        print(_corpus_table(name, rows, summary(rows)))
    doc = document(corpus, tables[0], names[0], tables[1] if args.compare else None, args.compare)
    if args.compare and doc["compare"]["difference"] is not None:
        lo, hi = doc["compare"]["difference_interval"]
        print(f"{names[1]} - {names[0]}: WER {doc['compare']['difference']:+.1%} "
              f"(95 % paired bootstrap {lo:+.1%} to {hi:+.1%}): {doc['compare']['verdict']}")
    if args.json:
        Path(args.json).write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")


def _stream(args: argparse.Namespace) -> None:
    """Replay the clip through an in-process engine; print each committed word with its lag."""
    import json

    from whisper_inquiry.audio.load import load_audio
    from whisper_inquiry.engine.core import Engine
    from whisper_inquiry.engine.threads import prepare_engine_process
    from whisper_inquiry.models.load import DEFAULT_MODEL
    from whisper_inquiry.streaming.policy import policy_from
    from whisper_inquiry.streaming.stream import StreamOptions, engine_listen, replay

    options = StreamOptions(policy_from(args.policy, args.n, args.frames), args.chunk)
    audio = load_audio(args.audio)
    prepare_engine_process()
    engine = Engine.load(args.model or DEFAULT_MODEL)
    try:
        result = replay(engine_listen(engine), audio.samples, options,
                        on_update=lambda u, _: print(f"  {u.time_s:6.1f} s  +{''.join(c.word for c in u.committed)}",
                                                     file=sys.stderr) if u.committed else None)
    finally:
        engine.close(timeout_s=60)  # the worker ends before the interpreter does (else: abort at exit)
    print(f"{options.describe()}, {len(result.updates)} updates over {result.duration_s:.1f} s")
    lag = result.lag_summary()
    if lag is None:
        print("nothing was committed: whisper heard no words in this audio")
    else:
        print(result.text)
        print(f"lag (committed minus heard): median {lag['median_s']:.2f} s, 90th percentile {lag['p90_s']:.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")


def _corpus_table(name: str, rows, total) -> str:
    def pct(x):
        return "-" if x is None else f"{x:.0%}"

    lines = [f"{name}: {total.clips} clips", f"{'clip':32} {'WER':>5} {'CER':>5} {'S/I/D':>8}  hypothesis"]
    for r in rows:
        s = r.score
        counts = f"{s.substitutions}/{s.insertions}/{s.deletions}" if s else "-"
        said = f"error: {r.error}" if r.error else (r.run.hypothesis if r.run else "(not run)")
        lines.append(f"{r.clip.audio[-32:]:32} {pct(s and s.wer):>5} {pct(s and s.cer):>5} {counts:>8}  {said[:70]}")
    if total.wer is not None:
        lo, hi = total.interval
        lines.append(f"corpus WER {total.wer:.1%} (95 % bootstrap {lo:.1%} to {hi:.1%}) over {total.scored} clips, "
                     f"text normalised with whisper's {' and '.join(total.normalizers)}")
    else:
        lines.append("no references: error rates need a reference for each clip")
    return "\n".join(lines)


def _models() -> None:
    from whisper_inquiry.models.load import list_models

    for m in list_models():
        print(f"{m.name:16} {m.source:10} {m.detail}")


# -- issue 11: experiments (one function per subcommand; JSON on stdout) ------------------------------
EXPERIMENTS = ("hallucination", "ablate", "mask", "lens", "heads")


def _add_experiment_commands(sub) -> None:
    def clip_command(name: str, help: str, task: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("audio", help="an audio file; experiments read its first 30 s window")
        p.add_argument("--model", default=None, help=MODEL_HELP)
        if task:
            p.add_argument("--task", default="transcribe", choices=TASKS)
            p.add_argument("--language", default=None, help="language code; omit to detect (multilingual models)")
        return p

    h = clip_command("hallucination", "weigh each segment's evidence of hallucination")
    h.add_argument("--silence-threshold", type=float, metavar="S", default=None,
                   help="also re-run with whisper's hallucination_silence_threshold=S and report what it drops")
    h.add_argument("--no-gate", action="store_true",
                   help="turn off transcribe's no-speech skip, so text written over non-speech is kept and checked")
    a = clip_command("ablate", "zero attention heads and re-decode")
    a.add_argument("--heads", required=True, metavar="KIND:LAYER.HEAD,...",
                   help="heads to zero, KIND one of enc, dec, cross (e.g. cross:2.5,enc:0.1); empty: none")
    m = clip_command("mask", "limit encoder self-attention to +-K frames and re-decode")
    m.add_argument("--k", type=int, required=True, help="frames each side (20 ms each); 1500 or more: no limit")
    clip_command("lens", "decode from every encoder layer's output")
    clip_command("heads", "rank decoder cross-attention heads as alignment heads")


def _experiment(args: argparse.Namespace) -> dict:
    from whisper_inquiry.audio.load import load_audio
    from whisper_inquiry.errors import OptionsError
    from whisper_inquiry.models.load import DEFAULT_MODEL, load_model

    samples = load_audio(args.audio).samples
    model = load_model(args.model or DEFAULT_MODEL)
    if args.command == "hallucination":
        return _hallucination(model, samples, args)
    if args.command == "ablate":
        return _ablate(model, samples, args)
    if args.command == "mask":
        if args.k < 0:
            raise OptionsError("--k must be 0 or more frames")
        return _mask(model, samples, args)
    if args.command == "lens":
        return _lens(model, samples, args)
    return _heads(model, samples, args)


def _hallucination(model, samples, args) -> dict:
    from whisper_inquiry.experiments.hallucination import check_hallucination

    return check_hallucination(model, samples, args.task, args.language, args.silence_threshold,
                               no_speech_gate=not args.no_gate).to_json()


def _ablate(model, samples, args) -> dict:
    from whisper_inquiry.experiments.heads import ablate
    from whisper_inquiry.experiments.interventions import parse_heads

    r = ablate(model, samples, parse_heads(args.heads, model), args.task, args.language)
    return {"original_text": r.original_text, "text": r.text, "heads": list(r.heads), "token_changes": [
        {"token": c.token, "change": c.change, "original_prob": c.original_prob, "prob": c.prob}
        for c in r.token_changes]}


def _mask(model, samples, args) -> dict:
    from whisper_inquiry.experiments.heads import mask

    r = mask(model, samples, [args.k], task=args.task, language=args.language)
    return {"k": args.k, "text": r.rows[0].text, "original_text": r.original_text}


def _lens(model, samples, args) -> dict:
    from whisper_inquiry.experiments.encoder_lens import encoder_lens

    r = encoder_lens(model, samples, args.task, args.language)
    return {"layers": [{"layer": x.layer, "text": x.text} for x in r.layers], "original_text": r.original_text}


def _heads(model, samples, args) -> dict:
    from whisper_inquiry.experiments.finder import find_alignment_heads

    r = find_alignment_heads(model, samples, args.task, args.language)
    return {"ranking": [{"layer": s.layer, "head": s.head, "score": round(s.score, 4), "official": s.official}
                        for s in r.ranking],
            "top3_shift_s": None if r.top3_shift_s != r.top3_shift_s else round(r.top3_shift_s, 3)}  # NaN: no words


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "analyze":
            _analyze(args)
        elif args.command == "corpus":
            _corpus(args)
        elif args.command == "stream":
            _stream(args)
        elif args.command in ("occlude", "surgery", "neurons"):
            _probe(args)
        elif args.command in EXPERIMENTS:
            import json

            print(json.dumps(_experiment(args), ensure_ascii=False))
        else:
            _models()
    except InquiryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unwritable output path and the like
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    return 0
