"""Word timings and the logit lens."""

import numpy as np

from whisper_inquiry.instruments.alignment import logit_lens
from whisper_inquiry.instruments.tokens import tokenizer_for


def test_dtw_words_cover_the_text_in_order(greedy_trace):
    window = greedy_trace.windows[0]
    words = window.final.words
    assert "".join(w.word for w in words).strip() == window.final.text.strip().replace("  ", " ")
    starts = [w.start_s for w in words]
    assert starts == sorted(starts)
    assert all(w.start_s <= w.end_s <= window.start_s + window.content_s + 0.02 for w in words)
    assert all(0 <= w.prob <= 1 for w in words)


def test_logit_lens_last_layer_predicts_the_chosen_tokens(tiny, greedy_trace):
    final = greedy_trace.windows[0].final
    targets = [s.id for s in final.steps]
    lens = logit_lens(tiny, final.residuals, targets, tokenizer_for(tiny.is_multilingual))
    assert lens.top_ids.shape == (4, len(targets))
    # the last layer is the model's own (unfiltered) prediction: it agrees with greedy almost everywhere
    agree = np.mean(lens.top_ids[-1] == np.array(targets))
    assert agree > 0.8
    assert (lens.top_probs <= 1).all() and (lens.target_probs <= lens.top_probs + 1e-6).all()
    # and it is surer of the chosen tokens than the first layer is
    assert lens.target_probs[-1].mean() > lens.target_probs[0].mean()
