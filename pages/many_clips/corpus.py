"""Corpus: many clips at once, their error rates, two models compared, slices, calibration, and a way into any clip."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components.common import columns, error, md_escape, page_end, page_start, presenting, show
from components.corpus import (
    DEMO,
    UPLOAD,
    open_clip,
    run_ui,
    served,
    sources,
    store,
    uploaded,
)
from components.corpus_figs import (
    alignment_html,
    alignment_legend,
    calibration_figure,
    slices_figure,
    wer_scatter,
)
from components.listen import words_chart
from components.sidebar import decoding_label, own_model_input
from whisper_inquiry.corpus.read import Corpus
from whisper_inquiry.corpus.score import substitution_pairs
from whisper_inquiry.corpus.table import (
    Row,
    calibration_of,
    changed,
    compare,
    rows_of,
    scored,
    slice_values,
    slices,
    summary,
    to_csv,
    to_manifest,
)
from whisper_inquiry.engine.factory import list_models
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.trace.serialize import load_trace

NO_B, OWN = "(none)", "your own checkpoint ..."


def corpus_ui() -> tuple[str, Corpus | None]:
    offered = sources()
    source = st.radio("Corpus", list(offered), format_func=offered.get, key="corpus_source", horizontal=True,
                      bind="query-params", persist_state="session")
    if source != UPLOAD:
        return source, served(source)
    st.caption("A zip of audio files with their references: a NeMo manifest (audio_filepath, text), Hugging "
               "Face's audiofolder (metadata.csv or .jsonl with file_name and a text column), a .txt beside each "
               "audio file, or audio alone. Up to 50 MB and 500 files.")
    upload = st.file_uploader("Corpus (.zip)", type=["zip"], key="corpus_zip")
    if upload is None:
        return source, None
    return source, uploaded(upload.getvalue(), upload.name)


def model_b_ui(model_a: str) -> str | None:
    models = [m for m in list_models() if m.name != model_a]
    labels = {m.name: f"{m.name} ({m.source})" if m.available_offline else f"{m.name} (download)" for m in models}
    choice = st.selectbox("Compare with model B", [NO_B, *labels, OWN], key="corpus_model_b", persist_state="session",
                          format_func=lambda name: labels.get(name, name),
                          help="Every clip is run with B too, with the same decoding options as A. Bundled "
                               "models work offline; the others are downloaded by openai-whisper on first use.")
    if choice == NO_B:
        return None
    if choice == OWN:
        return own_model_input("corpus_own_b", label="Model B: folder or Hugging Face repo id")
    return choice


def summary_ui(corpus: Corpus, rows: list[Row], model: str, label: str) -> None:
    total = summary(rows)
    if total.wer is None:
        st.metric(f"{label}: {model}", "not run yet" if corpus.has_references else "no references",
                  help="Error rates need what was said in each clip (the corpus's references) and the model's "
                       "transcript of it (Run).")
        return
    lo, hi = total.interval
    with_reference = sum(c.reference is not None for c in corpus.clips)
    st.metric(f"{label}: corpus WER with {model}", f"{total.wer:.1%}",
              help="Every clip's errors over every clip's words (word-weighted, as jiwer computes it)")
    spread = (f"95 % interval {lo:.1%} to {hi:.1%} (bootstrap over clips); " if total.scored >= 5 else
              "too few clips for an interval; ")
    st.caption(f"{spread}scored on {total.scored} of the {with_reference} clips with a reference"
               + (f"; {total.failed} clips failed" if total.failed else ""))


def table_frame(rows: list[Row], rows_b: list[Row] | None) -> pd.DataFrame:
    def pct(x):
        return None if x is None else round(100 * x, 1)

    records = []
    for r in rows:
        run, s = r.run, r.score
        ok = run is not None and not run.error
        record = {
            "clip": r.clip.audio, "WER %": pct(s and s.wer), "CER %": pct(s and s.cer),
            "subs": s.substitutions if s else None, "ins": s.insertions if s else None,
            "dels": s.deletions if s else None,
            "duration s": round(run.duration_s, 1) if ok else r.clip.duration_s,
            "language": r.language, "mean p": round(run.mean_prob, 3) if ok and run.mean_prob is not None else None,
            "lowest p": round(run.min_prob, 3) if ok and run.min_prob is not None else None,
            "compression": round(run.compression_ratio, 2) if ok else None,
            "no-speech p": round(run.no_speech_prob, 3) if ok else None,
            "hallucination check": run.hallucination.split(":")[0] if ok else None,  # in full: the clip's view
            "fallbacks": run.fallback_attempts if ok else None,
            "reference": r.clip.reference, "hypothesis": run.hypothesis if ok else None,
            "error": r.error or (None if run else "not run yet"),
        }
        records.append(record)
    frame = pd.DataFrame(records)
    if rows_b is not None:
        frame.insert(2, "WER B %", [pct(b.score and b.score.wer) for b in rows_b])
        frame.insert(len(frame.columns) - 1, "hypothesis B",
                     [b.run.hypothesis if b.run and not b.run.error else None for b in rows_b])
    for name in dict.fromkeys(k for r in rows for k in r.clip.columns):
        frame[name if name not in frame else f"{name} (corpus)"] = [r.clip.columns.get(name) for r in rows]
    return frame


def filter_ui(frame: pd.DataFrame) -> pd.DataFrame:
    left, right = columns([2, 3])
    with left:
        show = st.segmented_control("Show", ["all", "with errors", "likely hallucinated", "failed"], default="all",
                                    key="corpus_show", persist_state="session") or "all"
    with right:
        words = st.text_input("Find words in the reference or hypothesis", key="corpus_find",
                              persist_state="session")
    keep = pd.Series(True, index=frame.index)
    if show == "with errors":
        keep &= frame["WER %"].fillna(0) > 0
    elif show == "likely hallucinated":
        keep &= frame["hallucination check"].fillna("").str.startswith("likely")
    elif show == "failed":
        keep &= frame["error"].notna()
    if words.strip():
        text = frame["reference"].fillna("") + " " + frame["hypothesis"].fillna("")
        keep &= text.str.contains(words.strip(), case=False, regex=False)
    return frame[keep]


def clip_ui(source: str, row: Row, row_b: Row | None, model_a: str, model_b: str | None, results) -> None:
    """One clip: reference and hypothesis aligned, each word playable, and a button that opens it on every page."""
    st.subheader(f"Into a clip: {row.clip.audio}")
    if row.error:
        error(row.error)
        return
    if row.run is None:
        st.info("Not run yet.")
        return
    st.html(alignment_legend())
    for label, r in ((model_a, row), (model_b, row_b)):
        if r is None or r.run is None:
            continue
        if r.error:
            st.markdown(f"**{md_escape(label)}**: {md_escape(r.error)}")
            continue
        wer = f" (WER {r.score.wer:.0%})" if r.score and r.score.wer is not None else ""
        st.markdown(f"**{md_escape(label)}**{wer}: said against written")
        if r.score is not None:
            st.html(alignment_html(r.score))
        else:
            st.text(r.run.hypothesis or "(nothing written)")
    st.caption(f"Reference: {md_escape(row.clip.reference or '(none)')}")
    st.caption(f"Hallucination check ({md_escape(model_a)}): {md_escape(row.run.hallucination)}")
    path = results.trace_path(row.run)
    if path is not None and path.is_file():
        words_chart(load_trace(path), "corpus_word", title=f"Each word {model_a} wrote, on the log-mel: click one "
                                                            "to hear it")
    if st.button("Open this clip on every page", type="primary", icon=":material/open_in_new:",
                 on_click=open_clip, args=(source, row.clip, model_a, results.options, path),
                 help="It becomes the sidebar's audio (with the sidebar's model and options), and Overview "
                      "shows its reference beside the transcript."):
        # {}: switch_page's own clearing refuses widget-bound parameters; the next run writes them all again
        st.switch_page("pages/sound_to_text/overview.py", query_params={})


def compare_ui(rows: list[Row], rows_b: list[Row], model_a: str, model_b: str) -> None:
    st.header(f"Two models: {model_a} (A) and {model_b} (B)")
    diff = compare(rows, rows_b)
    if diff is None:
        st.info("No clip has a reference and a transcript from both models: nothing to compare yet.")
        return
    lo, hi = diff.interval
    st.metric(f"WER of B minus WER of A, on the same {diff.clips} clips", f"{diff.difference * 100:+.1f} points",
              delta=diff.verdict, delta_color="off")
    st.caption(f"A {diff.wer_a:.1%}, B {diff.wer_b:.1%}. 95 % paired bootstrap interval of B - A: "
               f"{lo * 100:+.1f} to {hi * 100:+.1f} points (the same resampled clips for both models).")
    both = [(a, b) for a, b in zip(rows, rows_b) if a.score and b.score and a.score.wer is not None
            and b.score.wer is not None]
    show(wer_scatter([a.score.wer for a, _ in both], [b.score.wer for _, b in both],
                     [a.clip.audio for a, _ in both], model_a, model_b), key="corpus_scatter")
    st.caption("Each dot is a clip. On the dashed line both models made the same share of errors; green dots "
               "below it are clips B got better, red dots above it clips B got worse.")
    moves = changed(rows, rows_b)
    better = [(rows[i].clip.audio, -d) for i, d in moves if d < 0]
    worse = [(rows[i].clip.audio, d) for i, d in moves if d > 0]
    left, right = columns(2)
    for column, title, found in ((left, "Better with B", better), (right, "Worse with B", worse)):
        with column:
            st.subheader(f"{title}: {len(found)} clips")
            if found:
                st.dataframe(pd.DataFrame({"clip": [c for c, _ in found], "WER change (points)": [
                    round(100 * d, 1) for _, d in found]}), hide_index=True)


def slices_ui(rows: list[Row], rows_b: list[Row] | None, model_a: str, model_b: str | None) -> None:
    st.header("Where does it fail? WER by slice")
    values = slice_values(rows)
    column = st.selectbox("Slice by", list(values), key="corpus_slice", persist_state="session",
                          help="Every column of the corpus, and duration and estimated signal-to-noise ratio in "
                               "three bins of about equal clip counts")
    found = slices(rows, column, values[column])
    if not found:
        st.info("No clip with a reference has a value in this column.")
        return
    other = slices(rows_b, column, values[column]) if rows_b is not None else None
    show(slices_figure(found, column, model_a, other, model_b), key="corpus_slices")
    st.caption("Each bar is the corpus WER of the clips with that value (word-weighted). A slice of few clips "
               "is a hint, not a finding.")


def substitutions_ui(rows: list[Row], model: str) -> None:
    pairs = substitution_pairs(scored(rows))
    if not pairs:
        return
    st.subheader(f"What {model} writes instead: the most frequent substitutions")
    st.dataframe(pd.DataFrame(pairs, columns=["said", "written", "times"]), hide_index=True)


def calibration_ui(rows: list[Row], model: str, key: str) -> None:
    cal = calibration_of(rows)
    if not cal.total:
        return
    show(calibration_figure(cal, model), key=key)
    st.caption("Every word the model wrote, binned by the probability it gave the word, against the share of "
               "each bin that matches the reference. On the dashed line the model is honest; bars below it mean "
               "it was surer than it was right. ECE (expected calibration error) is the words-weighted mean gap.")


# -- the page ----------------------------------------------------------------------------------------------------
page_start("Where does Whisper fail, over many clips?",
           "A corpus is many clips with what was said in each. Every clip runs through the same engine as a "
           "single analysis, so each row below is a full trace you can open. Word error rate (WER) counts the "
           "words substituted, inserted and deleted against the reference.")
source, corpus = corpus_ui()
if corpus is None:
    if source == UPLOAD:
        st.info("Upload a zip of clips to begin, or choose the demo corpus.")
    page_end()
    st.stop()
if corpus.refused:
    st.warning(f"{len(corpus.refused)} zip entries were refused and never written: "
               + md_escape("; ".join(corpus.refused[:5])))
model_a = st.session_state.get("model_name", "tiny.en")
options: AnalysisOptions = st.session_state.get("options") or AnalysisOptions()
st.caption(f"{corpus.name}: {len(corpus.clips)} clips, read as {corpus.layout}. Model A is the sidebar's: "
           f"{model_a}, {decoding_label(options)}.")
model_b = model_b_ui(model_a)

results_a = store(model_a, options)
jobs = [(model_a, results_a)] + ([(model_b, store(model_b, options))] if model_b else [])
runs = run_ui(corpus, jobs)
rows = rows_of(corpus, runs[0])
rows_b = rows_of(corpus, runs[1], like=rows) if model_b else None

left, right = columns(2)
with left:
    summary_ui(corpus, rows, model_a, "A")
with right:
    if rows_b is not None:
        summary_ui(corpus, rows_b, model_b, "B")
normalizers = sorted(set(summary(rows).normalizers) | (set(summary(rows_b).normalizers) if rows_b else set()))
if normalizers:
    st.caption("Before counting, both texts are normalised with whisper's own "
               f"{' and '.join(normalizers)} (English clips: the English one, which also writes \"nine thirty\" "
               "as 930; other languages: the basic one), so capitals, punctuation and spellings are not errors.")

st.header("Every clip")
frame = table_frame(rows, rows_b)
shown = filter_ui(frame)
event = st.dataframe(shown, key="corpus_table", on_select="rerun", selection_mode="single-row", hide_index=True,
                     height=min(600, 38 + 35 * len(shown)) if not presenting() else min(700, 48 + 44 * len(shown)))
st.caption("Click a column's title to sort; select a row to look into that clip.")
picked = [i for i in (event.selection.rows if event is not None else []) if i < len(shown)]
if picked:
    i = int(shown.index[picked[0]])
    clip_ui(source, rows[i], rows_b[i] if rows_b is not None else None, model_a, model_b, results_a)
else:
    st.info("Select a row of the table to see its words aligned, hear them, and open the clip on every page.")

if rows_b is not None and model_b is not None:
    compare_ui(rows, rows_b, model_a, model_b)
slices_ui(rows, rows_b, model_a, model_b)
substitutions_ui(rows, model_a)
if rows_b is not None and model_b is not None:
    substitutions_ui(rows_b, model_b)

st.header("Is the model's confidence honest?")
calibration_ui(rows, model_a, "corpus_calibration_a")
if rows_b is not None and model_b is not None:
    calibration_ui(rows_b, model_b, "corpus_calibration_b")

st.header("Take it with you")
left, right = columns(2)
with left:
    st.download_button("Table as CSV", to_csv(rows), file_name=f"{corpus.name}-{model_a}.csv", mime="text/csv",
                       icon=":material/download:", on_click="ignore")
with right:
    st.download_button("NeMo manifest with pred_text", to_manifest(rows), file_name=f"{corpus.name}-{model_a}.jsonl",
                       mime="application/json", icon=":material/download:", on_click="ignore",
                       help="Read by NeMo's Speech Data Explorer and other tools that speak its manifest")
st.caption("The same table from the shell: python -m whisper_inquiry corpus PATH --model M --compare M2 --json OUT"
           + (" (the demo corpus: whisper_inquiry/samples/corpus)" if source == DEMO else ""))
page_end()
