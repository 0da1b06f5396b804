"""A diagram of the model with this run's shapes: conv stem, encoder blocks, decoder blocks, and the
cross-attention that joins them. Written as Graphviz DOT, which Streamlit draws in the browser
(st.graphviz_chart needs no system package)."""

from __future__ import annotations

from whisper_inquiry.trace import Trace

from .common import presenting


def decoder_counts(trace: Trace) -> dict[str, int]:
    """What the decoder read and wrote in the first window, counted the way the Tokens page counts:
    `written` is every step it took (text, timestamps, end-of-text); the end-of-text it writes last is
    never fed back, so its longest input is prompt + written - 1."""
    attempt = trace.windows[0].final
    steps = attempt.steps
    written = len(steps)
    return {"prompt": len(attempt.prompt), "written": written,
            "text": sum(not (s.is_timestamp or s.is_eot) for s in steps),
            "timestamps": sum(s.is_timestamp for s in steps), "end": sum(s.is_eot for s in steps),
            "longest_input": len(attempt.prompt) + written - (1 if steps and steps[-1].is_eot else 0)}


def _node(name: str, title: str, shape: str, fill: str) -> str:
    label = f"<<b>{title}</b><br/>{shape}>"
    return f'  {name} [label={label}, fillcolor="{fill}"];'


def model_dot(trace: Trace) -> str:
    """The model as DOT: nodes name each stage with the shape of what it hands on, for this run."""
    d = trace.model.dims
    c = decoder_counts(trace)
    size = 20 if presenting() else 15
    enc, dec, n_ctx = d["n_audio_state"], d["n_text_state"], d["n_audio_ctx"]
    n_tok = c["longest_input"]
    lines = [
        "digraph whisper {",
        "  rankdir=TB; nodesep=0.5; ranksep=0.35;",
        f'  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize={size}, margin="0.2,0.08"];',
        f'  edge [fontname="Helvetica", fontsize={size - 2}, penwidth=2];',
        "  subgraph cluster_enc {",
        f'    label="encoder"; fontsize={size + 2}; fontname="Helvetica"; color="#4c78a8"; style=rounded;',
        "  " + _node("mel", "log-mel", f"{d['n_mels']} bins x 3,000 frames (10 ms)", "#fde0c5"),
        "  " + _node("conv", "2 convolutions + GELU", f"{enc} x 1,500 (20 ms each)", "#dbe9f6"),
        "  " + _node("pos", "+ positional sinusoids", f"{n_ctx:,} x {enc}", "#dbe9f6"),
        "  " + _node("eblocks", f"{d['n_audio_layer']} encoder blocks",
                     f"self-attention ({d['n_audio_head']} heads)<br/>+ MLP: {n_ctx:,} x {enc}", "#b9d3ee"),
        "    mel -> conv -> pos -> eblocks;",
        "  }",
        "  subgraph cluster_dec {",
        f'    label="decoder"; fontsize={size + 2}; fontname="Helvetica"; color="#f58518"; style=rounded;',
        "  " + _node("tok", "tokens so far", f"{c['prompt']} prompt + up to {c['written'] - 1} written", "#fde0c5"),
        "  " + _node("emb", "embedding + positions", f"up to {n_tok} x {dec}", "#fde9d5"),
        "  " + _node("dblocks", f"{d['n_text_layer']} decoder blocks",
                     f"self-attention (masked)<br/>+ cross-attention<br/>({d['n_text_head']} heads) + MLP", "#fbd3ad"),
        "  " + _node("logits", "logits", f"{d['n_vocab']:,} scores", "#fde9d5"),
        "    tok -> emb -> dblocks -> logits;",
        "  }",
        '  eblocks -> dblocks [xlabel="cross-attention", color="#d62728", fontcolor="#d62728", penwidth=3,'
        " constraint=false];",
        '  logits -> tok [xlabel="append", style=dashed, constraint=false];',
        "}",
    ]
    return "\n".join(lines)
