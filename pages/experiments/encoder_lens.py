"""Encoder lens: decode from every encoder layer's output and see at which depth the words appear."""

import streamlit as st

from components import experiments as exp
from components.common import page_end, page_start, plain, show
from components.experiment_figs import lens_fig
from components.session import require_trace

page_start("At which encoder layer do the words appear?",
           "The decoder normally reads the encoder's last layer. Here it reads each earlier layer instead "
           "(through the same final layer norm), as if the encoder stopped there. The last row is the normal "
           "transcript.")
exp.explain("Early layers hold sound, not yet language: the decoder cannot read words from them. Watch the "
            "transcript sharpen as the sound passes through more layers.")
trace = require_trace()
samples, model_name, task = trace.audio, trace.model.name, trace.options.task
language = trace.language.detected if trace.model.multilingual else None
result = exp.lens(samples, model_name, task, language)
if result is not None:
    if result.original_words:
        show(lens_fig(result))
    for layer in result.layers:
        st.markdown(f"**Layer {layer.layer}**: {100 * layer.word_error_rate:.0f}% of words wrong, "
                    f"average log-probability {layer.avg_logprob:.2f}")
        plain(layer.text or "(nothing)")
page_end()
