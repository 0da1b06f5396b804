"""Audio and spectrogram: from sound waves to the picture Whisper actually reads."""

import pandas as pd
import streamlit as st

from components.audio_figs import filterbank_figure, mel_figure, spectrogram_figure, waveform_figure
from components.common import page_end, page_start, show
from components.glossary import term
from components.listen import mark_span, play
from components.session import require_trace, window_ui
from whisper_inquiry.audio.load import SAMPLE_RATE

page_start("How does Whisper see sound?",
           f"Whisper never hears the {term('waveform')} directly. It cuts the audio into 30 s windows, takes a "
           f"spectrogram ({term('STFT')}) every 10 ms, folds the frequencies onto the {term('mel')} scale (fine at "
           "low pitch, coarse at high pitch, as our ears are), takes the logarithm and rescales it. That "
           f"{term('log-mel')} picture is the model's only input.")
trace = require_trace()
end_s = round(trace.duration_s, 1)
span = st.slider("Listen to a stretch (s): it is shaded on every chart below", 0.0, max(end_s, 0.1),
                 (0.0, min(end_s, 3.0)), 0.1, key="audio_span")
play(trace.audio, *span)
show(mark_span(waveform_figure(trace), *span, "listening"))
a = trace.audio
# small summaries as static tables: they wrap to the page and grow with presenter mode, where a data grid's
# columns cut "0.0007134951883926988" short
st.table(pd.DataFrame([{"samples": len(a), "duration (s)": round(trace.duration_s, 2), "max": round(float(a.max()), 3),
                        "min": round(float(a.min()), 3), "mean": round(float(a.mean()), 4),
                        "std": round(float(a.std()), 3)}]), hide_index=True)
index = window_ui(trace, "audio_window")
window = trace.windows[index]
start = int(window.start_s * SAMPLE_RATE)
show(mark_span(spectrogram_figure(a[start:start + 30 * SAMPLE_RATE], window.start_s), *span))
st.caption("Bright bands are loud frequencies: the stacked lines in speech are the harmonics of the voice.")
show(mark_span(mel_figure(window, st.toggle("All 3,000 frames (heavier page)", False)), *span))
st.caption("Each column is 10 ms. Shorter clips are padded to 30 s: the model always sees 3,000 columns, and the "
           "flat block at the end (zeros) is that padding.")
s = window.mel_stats
st.table(pd.DataFrame([{"shape": f"{s.shape[0]} x {s.shape[1]}", "min": round(s.minimum, 3),
                        "max": round(s.maximum, 3), "mean": round(s.mean, 3), "std": round(s.std, 3)}]),
         hide_index=True)
st.caption("Whisper clips the log-mel at 8 below its maximum and rescales it to roughly -1 ... 1.")
show(filterbank_figure(window.mel.shape[0]))
if st.toggle("Pitch (pYIN) and onsets over the spectrogram (a few seconds, once per clip)", False):  # issue 12
    from components.probe_figs import pitch_onset_figure
    from components.probes import pitch_and_onsets
    show(pitch_onset_figure(a[start:start + 30 * SAMPLE_RATE], *pitch_and_onsets(a[start:start + 30 * SAMPLE_RATE])))
page_end()
