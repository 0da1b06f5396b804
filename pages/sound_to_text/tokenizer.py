"""Tokenizer: text to tokens and back, the vector each token starts as, and the special tokens."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components.common import font_px, page_end, page_start, plain, safe, show, style
from components.session import engine, require_trace
from components.token_figs import visible
from whisper_inquiry.models import vocab

page_start("How does Whisper turn text into tokens?",
           "Whisper writes text as tokens: pieces of words from a byte-level BPE vocabulary (common words are "
           "one token, rare ones several). Type anything to see how it is cut, that decoding gives the text "
           "back exactly, and the embedding vector each token starts as inside the decoder.")
trace = require_trace()
multilingual = trace.model.multilingual
text = st.text_area("Text", trace.text.strip() or "Hello, world!", max_chars=2000)
vocabulary = st.radio("Vocabulary", ["this model's", "English-only (gpt2)", "multilingual"], horizontal=True)
use_multi = multilingual if vocabulary == "this model's" else vocabulary == "multilingual"
result = vocab.tokenize(text, use_multi)

st.subheader(f"{len(result.pieces)} tokens from {len(text)} characters")
st.dataframe(pd.DataFrame([{"#": i, "id": p.id, "piece": visible(p.text), "bytes": p.bytes_hex}
                           for i, p in enumerate(result.pieces)]), hide_index=True, height=260)
st.caption("␣ is a space: \" the\" and \"the\" are different tokens, and most words carry the space before them.")
st.write("Decoded back:")
plain(result.round_trip)
if result.round_trip == text:
    st.success("The round trip is exact: decoding the ids gives the same text.")
else:
    st.warning("The round trip differs from the input (the tokenizer normalised something).")

if result.pieces and use_multi == multilingual:
    ids = [p.id for p in result.pieces][:40]
    vectors = engine(trace.model.name).embeddings(ids)
    names = [f"{k}. {safe(visible(p.text))}" for k, p in enumerate(result.pieces[:40])]  # unique, in order
    fig = go.Figure(go.Heatmap(z=vectors, y=names, colorscale="RdBu_r", zmid=0,
                               colorbar={"title": {"text": "value in<br>that dimension", "side": "right"}},
                               hovertemplate="%{y}, dimension %{x}: %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    show(style(fig, f"Token embeddings: the {vectors.shape[1]}-number vector each token starts as",
               "embedding dimension", "token", max(300, int(1.45 * font_px()) * len(ids) + 120)))
    norms = np.linalg.norm(vectors, axis=1)
    st.caption(f"Vector lengths range from {norms.min():.2f} to {norms.max():.2f}. The same table, transposed, "
               "turns the decoder's last hidden state into scores for every token.")

c1, c2 = st.columns(2)
with c1:
    st.subheader("Special tokens")
    st.table(pd.DataFrame(vocab.special_tokens(multilingual), columns=["id", "token", "meaning"]).set_index("id"))
with c2:
    st.subheader("The prompt format")
    fmt = vocab.prompt_format(multilingual, language="es" if multilingual else "en",
                              task="translate" if multilingual else "transcribe", previous="earlier words")
    st.table(pd.DataFrame([(i, visible(t), m) for i, t, m in fmt], columns=["id", "token", "meaning"]).set_index("id"))
    sizes = vocab.vocabulary_sizes()
    st.caption("Vocabulary sizes: " + ", ".join(f"{k}: {v:,}" for k, v in sizes.items()) +
               ". English-only models use GPT-2's byte-level BPE; multilingual ones a larger table.")
page_end()
