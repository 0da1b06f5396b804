"""What the charts and page pieces show a class: labels that never collide, names instead of codes, word
times marked and honestly described, whisper's fallback told as it happened. Traces come from the real
bundled tiny.en model (conftest); where a case needs a run the sample cannot give (every fallback attempt
failing, a Swedish guess), the real trace is edited with dataclasses.replace and the test says so."""

from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import components.common as common
from components.common import label_step, ordinal, stagger, style, text_px
from components.encoder_figs import model_view_figure
from components.listen import line_count, mark_span, word_lanes, word_of_token, words_on_mel_figure
from components.model_diagram import decoder_counts, model_boxes, model_figure
from components.navigation import script_of
from components.token_figs import alternatives_figure, least_certain, probability_figure, timestamp_rows
from components.transcript import fallback_note, language_figure, transcript_html
from components.tree_figs import STATUS_STYLE, finalists_html, label_chars, layout, step_count, tree_figure
from whisper_inquiry.trace.derived import head_summaries
from whisper_inquiry.trace.schema import Word

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def presenter(monkeypatch):
    monkeypatch.setattr(common, "presenting", lambda: True)


def _labelled_points(fig):
    """(x, y, text, position) of every labelled point of every scatter trace."""
    out = []
    for tr in fig.data:
        if tr.type != "scatter" or tr.text is None or "text" not in (tr.mode or ""):
            continue
        positions = tr.textposition if isinstance(tr.textposition, (list, tuple)) else [tr.textposition] * len(tr.x)
        out += list(zip(tr.x, tr.y, tr.text, positions))
    return out


# --- the search tree ------------------------------------------------------------------------------------

def test_beam_tree_labels_never_share_a_place_and_fit_their_step(beam_trace):
    tree = beam_trace.windows[0].final.tree
    last = min(step_count(tree), 8)
    fig = tree_figure(tree, 0, last, show_dropped=True)
    points = _labelled_points(fig)
    assert len(points) > 2 * last  # several beams per step are labelled, not only the chosen path
    places = [(x, y) for x, y, _, _ in points]
    assert len(places) == len(set(places)), "two labelled nodes drawn at one place"
    room = label_chars(0, last)
    for _, _, text, _ in points:
        assert len(html.unescape(re.sub(r"</?b>", "", text))) <= room  # a label ends before the next step's marker


def test_beam_tree_rows_are_ranks_from_one_with_no_negative_ticks(beam_trace):
    tree = beam_trace.windows[0].final.tree
    fig = tree_figure(tree, 0, 6)
    ticks = list(fig.layout.yaxis.tickvals)
    assert ticks == list(range(len(ticks))) and list(fig.layout.yaxis.ticktext)[0] == "1"
    low, high = fig.layout.yaxis.range
    assert high > -1 and low < len(ticks)  # the axis shows no rank -1 or -2 above the best


def test_beam_tree_draws_the_kept_beams_in_the_first_rows(tiny, spanish):
    """Issue 25: finished candidates sorted in among the kept pushed kept beams to ranks 6-10 of a beam of 5."""
    from whisper_inquiry.analyze import analyze
    from whisper_inquiry.options import AnalysisOptions

    trace = analyze(tiny, spanish, AnalysisOptions(strategy="beam", beam_size=3, fallback=False))
    tree = trace.windows[0].final.tree
    pos = layout(tree, 0, step_count(tree), show_dropped=True)
    assert "finished" in [tree.status[i] for i in pos]
    kept_rows = [y for i, (_, y) in pos.items() if tree.status[i] == "kept"]
    assert kept_rows and max(kept_rows) < 3


def test_beam_tree_shows_dropped_candidates_only_on_demand(beam_trace):
    tree = beam_trace.windows[0].final.tree
    assert "pruned" in tree.status
    hidden = {tr.name for tr in tree_figure(tree, 0, 6).data}
    shown = {tr.name for tr in tree_figure(tree, 0, 6, show_dropped=True).data}
    assert STATUS_STYLE["pruned"][1] not in hidden and STATUS_STYLE["pruned"][1] in shown
    kept_only = layout(tree, 0, 6, show_dropped=False)
    assert all(tree.status[i] != "pruned" for i in kept_only)
    assert all(kept_only[i][1] == 0 for i in tree.chosen_path if i in kept_only)  # the final choice on top


def test_final_ranking_shows_each_finalists_whole_text_and_marks_differences(beam_trace):
    tree = beam_trace.windows[0].final.tree
    table = finalists_html(tree)
    assert table.count("<tr>") == len(tree.finalists) + 1 and "✔ chosen" in table
    for f in tree.finalists:
        for word in re.sub(r"<\|[\d.]+\|>", " ", f.text).split():
            assert html.escape(word) in table
    chosen = next(f for f in tree.finalists if f.selected)
    if any(f.text != chosen.text for f in tree.finalists):
        assert "<mark" in table


# --- fallback, told as it happened -------------------------------------------------------------------

def _all_failed(window, n: int = 6):
    """The real window's attempt copied to six temperatures, every one failing (edited trace)."""
    a = window.final
    attempts = [dataclasses.replace(a, temperature=round(0.2 * i, 1), failed_checks="average log-probability "
                                    "-3.30 is below -1", rejected="low log-probability") for i in range(n)]
    return dataclasses.replace(window, attempts=attempts)


def test_fallback_note_says_whisper_keeps_the_last_when_every_attempt_failed(greedy_trace):
    window = _all_failed(greedy_trace.windows[0])
    note = fallback_note(window)
    assert "all six attempts failed its checks; whisper keeps the last" in note
    assert "temperature 1" in note and "accepted" not in note
    assert fallback_note(greedy_trace.windows[0]) is None  # the first attempt passed: nothing to say


def test_search_and_overview_pages_tell_the_failed_fallback(greedy_trace):
    trace = dataclasses.replace(greedy_trace, windows=[_all_failed(greedy_trace.windows[0])])  # edited trace
    for page in ("search", "overview"):
        at = AppTest.from_file(str(ROOT / script_of(page)), default_timeout=60)
        at.session_state["trace"] = trace
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("whisper keeps the last" in w.value for w in at.warning), page
    at = AppTest.from_file(str(ROOT / script_of("search")), default_timeout=60)
    at.session_state["trace"] = trace
    at.run()
    table = at.table[0].value
    assert list(table["verdict"])[-1].endswith("whisper keeps it anyway (the last attempt)")
    assert "accepted" not in " ".join(table["verdict"])


@pytest.fixture(scope="module")
def sampled_fallback(tiny, spanish):
    """tiny.en on Spanish: greedy fails whisper's checks, and the fallback samples up to temperature 1."""
    from whisper_inquiry.analyze import analyze
    from whisper_inquiry.options import AnalysisOptions

    return analyze(tiny, spanish, AnalysisOptions())


def test_a_sampled_attempts_tree_says_sampling_and_draws_each_token_at_its_own_rank(sampled_fallback):
    window = sampled_fallback.windows[0]
    assert len(window.attempts) > 1
    for attempt in window.attempts:
        tree = attempt.tree
        assert tree.strategy == ("sampling" if attempt.temperature > 0 else "greedy")
        assert [tree.rank[i] for i in tree.chosen_path][: len(attempt.steps)] == [s.rank for s in attempt.steps]
    final = window.final
    assert final.temperature > 0 and max(s.rank for s in final.steps) > 20  # drawn from far down the list
    tree = final.tree
    fig = tree_figure(tree, 0, step_count(tree), show_dropped=True)
    pos = layout(tree, 0, step_count(tree), show_dropped=True)
    chosen_rows = [pos[i][1] for i in tree.chosen_path if i in pos]
    assert any(row > 0 for row in chosen_rows)  # the chosen path is not drawn as "rank 1" throughout
    for i in tree.chosen_path:
        if i in pos and tree.rank[i] < 10:
            assert pos[i][1] == tree.rank[i]
    far = max(tree.chosen_path, key=lambda i: tree.rank[i])
    assert any(f"#{tree.rank[far] + 1:,}" in str(t) for _, _, t, _ in _labelled_points(fig))
    assert fig.layout.yaxis.title.text == "probability rank (1 = most likely)"


def test_search_and_tokens_pages_say_a_sampled_attempt_was_sampled(sampled_fallback):
    at = AppTest.from_file(str(ROOT / script_of("search")), default_timeout=60)
    at.session_state["trace"] = sampled_fallback
    at.run()
    assert not at.exception
    t = sampled_fallback.windows[0].final.temperature
    assert any(c.value.startswith(f"Strategy: sampling at temperature {t:g} (a fallback attempt") for c in at.caption)
    at = AppTest.from_file(str(ROOT / script_of("tokens")), default_timeout=60)
    at.session_state["trace"] = sampled_fallback
    at.run()
    assert not at.exception
    n = len(sampled_fallback.windows[0].attempts)
    assert any(f"attempt {n} of {n}, sampled at temperature {t:g}" in i.value for i in at.info)


# --- words and time -------------------------------------------------------------------------------------

def test_transcript_html_marks_each_word_span_with_its_estimated_time(greedy_trace):
    page = transcript_html(greedy_trace.steps, words=greedy_trace.words)
    spans = re.findall(r'data-start="([\d.]+)" data-end="([\d.]+)"[^>]*>([^<]*)</span>', page)
    weather = next(w for w in greedy_trace.words if w.word.strip() == "weather")
    assert (f"{weather.start_s:.2f}", f"{weather.end_s:.2f}", " weather") in spans
    assert len(spans) >= len(greedy_trace.words)


def test_every_token_of_text_maps_to_the_word_it_spells(greedy_trace):
    steps, words = greedy_trace.windows[0].final.steps, greedy_trace.words
    owner = word_of_token(steps, words)
    for k, w in enumerate(words):
        assert "".join(s.text for s, o in zip(steps, owner) if o == k) == w.word
    assert all(o is None for s, o in zip(steps, owner) if s.is_timestamp or s.is_eot)


def test_word_labels_on_the_log_mel_never_overlap_even_when_words_crowd():
    words = [Word(f" word{i}", 0.1 * i, 0.1 * i + 0.1, 0.9) for i in range(12)]  # 12 words in 1.2 s
    lanes = word_lanes(words, duration_s=1.2, room_px=600)
    s_per_px = 1.2 / 600
    by_lane: dict[int, list[tuple[float, float]]] = {}
    for w, lane in zip(words, lanes):
        centre, half = (w.start_s + w.end_s) / 2, text_px(w.word.strip()) * s_per_px / 2
        by_lane.setdefault(lane, []).append((centre - half, centre + half))
    for spans in by_lane.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    assert max(lanes) > 0


def test_overview_picture_places_every_word_on_the_log_mel_and_marks_a_chosen_span(greedy_trace):
    fig = words_on_mel_figure(greedy_trace, highlight=(1.0, 1.5))
    shown = [t for tr in fig.data if tr.name == "words" for t in tr.text]
    assert shown == [w.word.strip() for w in greedy_trace.words]  # every word, in reading order
    assert [d[4] for tr in fig.data if tr.name == "words" for d in tr.customdata] == list(range(len(shown)))
    assert any(tr.type == "heatmap" for tr in fig.data)
    assert any(s.x0 == 1.0 and s.x1 == 1.5 for s in fig.layout.shapes)
    single = mark_span(probability_figure(greedy_trace.steps), 0.5, 0.7)  # a plot without subplots too
    assert single.layout.shapes[-1].x0 == 0.5


def test_long_speech_is_set_in_lines_of_at_most_two_lanes_in_reading_order():
    """Issue 25: 19 s of speech stacked into 10-12 staggered rows above one log-mel; reading order was lost."""
    words = [Word(f" word{i}", 0.3 * i, 0.3 * i + 0.25, 0.9) for i in range(64)]  # 19 s, a word every 0.3 s
    n = line_count(words, 19.2)
    assert 1 < n <= 6
    span = 19.2 / n
    for k in range(n):
        line = [w for w in words if min(n - 1, int(((w.start_s + w.end_s) / 2) // span)) == k]
        assert max(word_lanes(line, span), default=0) < 2


def test_word_timing_pages_say_the_times_are_estimates(greedy_trace):
    at = AppTest.from_file(str(ROOT / script_of("alignment")), default_timeout=60)
    at.session_state["trace"] = greedy_trace
    at.run()
    assert any("estimates" in w.value and "by ear" in w.value for w in at.warning)
    at.selectbox(key="align_word").set_value(1).run()
    assert not at.exception and len(at.get("audio")) == 1  # the chosen word's span is there to play


# --- names, tokens, labels ---------------------------------------------------------------------------

def test_language_chart_names_languages_and_keeps_room_for_the_value(greedy_trace):
    guess = dataclasses.replace(greedy_trace.language, applies=True, detected="sv",
                                probs={"sv": 0.981, "no": 0.012, "da": 0.004})  # edited: a Swedish guess
    fig = language_figure(dataclasses.replace(greedy_trace, language=guess))
    bar = fig.data[0]
    assert list(bar.y)[-1] == "Swedish" and "sv" not in list(bar.y)
    assert list(bar.text)[-1] == "98.1 %" and fig.layout.title.text == "Swedish 98.1 %"
    assert fig.layout.xaxis.range[1] >= 1.25 and bar.cliponaxis is False


def test_tokens_open_on_the_least_certain_word_not_a_timestamp(greedy_trace):
    steps = greedy_trace.windows[0].final.steps
    i = least_certain(steps)
    assert not steps[i].is_timestamp and not steps[i].is_eot and any(c.isalnum() for c in steps[i].text)
    words = [k for k, s in enumerate(steps) if not (s.is_timestamp or s.is_eot) and any(c.isalnum() for c in s.text)]
    assert steps[i].prob == min(steps[k].prob for k in words)


def test_token_labels_show_leading_spaces(greedy_trace):
    steps = greedy_trace.windows[0].final.steps
    assert any(label.startswith("1. ␣") or "␣" in label for label in alternatives_figure(steps[1]).data[0].y)
    assert all(not row["token"].startswith(" ") for row in timestamp_rows(steps, 0.0))


def test_many_rotated_token_labels_are_thinned_so_they_never_overlap(greedy_trace, presenter):
    steps = greedy_trace.windows[0].final.steps * 4  # about 90 bars, as a long clip has
    fig = probability_figure(steps, chosen=10, room_px=640)
    ticks = list(fig.layout.xaxis.tickvals)
    px_per_bar = 640 / len(steps)
    gaps = [(b - a) * px_per_bar for a, b in zip(ticks, ticks[1:])]
    assert 10 in ticks and min(gaps) >= 1.3 * common.PRESENTER_FONT_SIZE
    assert len(ticks) < len(steps) and "labelled" in fig.layout.title.text


def test_presenter_mode_enlarges_type_and_thickens_lines(greedy_trace, presenter):
    fig = style(tree_figure(greedy_trace.windows[0].final.tree, 0, 5), "t")
    assert fig.layout.font.size == common.PRESENTER_FONT_SIZE > common.FONT_SIZE
    path = next(tr for tr in fig.data if tr.name == "the chosen path")
    assert path.line.width > 4


def test_long_titles_wrap_to_the_charts_width_instead_of_running_off_it(presenter):
    title = "Sound becoming text: the log-mel with each word where whisper placed it"
    fig = style(_empty_figure(), title)
    lines = fig.layout.title.text.split("<br>")
    assert len(lines) > 1 and " ".join(lines) == title
    limit = common.ROOM_PX + 100
    assert all(text_px(line, common.PRESENTER_FONT_SIZE + 4) * 0.55 / 0.6 <= limit for line in lines)
    assert fig.layout.margin.t > 60  # the extra lines get room above the plot


def _empty_figure():
    import plotly.graph_objects as go

    return go.Figure()


def test_label_helpers():
    # placed in order of centre, (0.5, 1) first: (1, 3) fits after it in the top lane, (0, 2) goes below
    assert stagger([(0, 2), (1, 3), (2.5, 4), (0.5, 1)]) == [1, 0, 1, 0]
    assert label_step(100, 600, 20) == 4 and label_step(10, 600, 20) == 1
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 22)] == ["1st", "2nd", "3rd", "4th", "11th", "12th", "22nd"]


# --- encoder and architecture ----------------------------------------------------------------------------

def test_model_view_veils_the_padding_of_a_short_clip(greedy_trace):
    window = greedy_trace.windows[0]
    enc = head_summaries(greedy_trace, 0)  # the thumbnails come from the derived summaries
    fig = model_view_figure(enc, window.content_s)
    assert len(fig.layout.shapes) == 2 * enc.n_layer * enc.n_head  # the page's caption says where it starts
    assert len(model_view_figure(enc, 30.0).layout.shapes) == 0


def test_architecture_counts_the_tokens_the_tokens_page_counts(greedy_trace):
    steps = greedy_trace.windows[0].final.steps
    counts = decoder_counts(greedy_trace)
    assert counts["written"] == len(steps) == counts["text"] + counts["timestamps"] + counts["end"]
    assert counts["longest_input"] == len(greedy_trace.windows[0].final.prompt) + len(steps) - 1


def test_model_diagram_draws_both_stacks_with_this_runs_shapes(greedy_trace):
    d = greedy_trace.model.dims
    fig = model_figure(greedy_trace)
    texts = " ".join(a.text for a in fig.layout.annotations)
    for text in (f"{d['n_audio_layer']} encoder blocks", f"{d['n_text_layer']} decoder blocks", "cross-",
                 f"{d['n_mels']} x 3,000", f"{d['n_vocab']:,} scores"):
        assert text in texts
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(rects) == len(model_boxes(greedy_trace)) == 8
    for a, b in ((a, b) for i, a in enumerate(rects) for b in rects[i + 1:]):  # no box overlaps another
        assert a.x1 <= b.x0 or b.x1 <= a.x0 or a.y1 <= b.y0 or b.y1 <= a.y0
