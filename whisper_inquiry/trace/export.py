"""A Trace as files people already use: JSON for programs, TXT, SRT and VTT subtitles for people."""

from __future__ import annotations

import json

from whisper_inquiry.trace.schema import TokenStep, Trace


def _token_json(step: TokenStep) -> dict:
    return {
        "id": step.id, "text": step.text, "prob": step.prob, "logprob": step.logprob, "rank": step.rank,
        "alternatives": [{"text": a.text, "prob": a.prob} for a in step.alternatives],
    }


def segment_steps(trace: Trace) -> list[list[TokenStep]]:
    """The decoding steps behind each segment, matched in order (transcribe may drop a window's tail)."""
    pool = trace.steps
    out, cursor = [], 0
    for segment in trace.segments:
        ids = segment.tokens
        start = cursor
        while start + len(ids) <= len(pool) and [s.id for s in pool[start:start + len(ids)]] != ids:
            start += 1
        if start + len(ids) > len(pool):
            out.append([])
            continue
        out.append(pool[start:start + len(ids)])
        cursor = start + len(ids)
    return out


def to_json(trace: Trace) -> dict:
    """The transcript with every token's probability and runners-up, word timings and the search trees."""
    nodes, pruned, finished = [], 0, 0
    for w in trace.windows:
        tree = w.final.tree
        chosen = set(tree.chosen_path)
        for i in range(len(tree)):
            nodes.append({
                "window": w.index, "id": i, "parent": tree.parent[i], "token": tree.token[i], "text": tree.text[i],
                "step": tree.step[i], "logprob": tree.logprob[i], "cum_logprob": tree.cum_logprob[i],
                "status": tree.status[i], "chosen": i in chosen,
            })
        pruned += sum(s in ("pruned", "alternative") for s in tree.status)
        finished += sum(s == "finished" for s in tree.status)
    return {
        "text": trace.text.strip(),
        "language": trace.language.detected,
        "model": trace.model.name,
        "device": trace.model.device,
        "segments": [
            {"start": seg.start_s, "end": seg.end_s, "text": seg.text, "tokens": [_token_json(s) for s in steps]}
            for seg, steps in zip(trace.segments, segment_steps(trace))
        ],
        "words": [{"word": wd.word, "start": wd.start_s, "end": wd.end_s, "prob": wd.prob} for wd in trace.words],
        "tree": {"nodes": nodes, "pruned": pruned, "finished": finished},
        "timings_ms": trace.timings_ms,
    }


def to_json_text(trace: Trace) -> str:
    return json.dumps(to_json(trace), indent=1, ensure_ascii=False)


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(trace: Trace) -> str:
    blocks = [f"{i}\n{_clock(s.start_s, ',')} --> {_clock(s.end_s, ',')}\n{s.text.strip()}\n"
              for i, s in enumerate(trace.segments, 1)]
    return "\n".join(blocks)


def to_vtt(trace: Trace) -> str:
    """WebVTT with one cue per segment and each word's start as an inline timestamp (karaoke style)."""
    words = trace.words
    cues = []
    for s in trace.segments:
        inside = [wd for wd in words if s.start_s - 0.01 <= wd.start_s < s.end_s + 0.01]
        text = "".join(f"<{_clock(wd.start_s, '.')}>{wd.word}" for wd in inside).strip() if inside else s.text.strip()
        cues.append(f"{_clock(s.start_s, '.')} --> {_clock(s.end_s, '.')}\n{text}\n")
    return "WEBVTT\n\n" + "\n".join(cues)


def to_txt(trace: Trace) -> str:
    return trace.text.strip() + "\n"
