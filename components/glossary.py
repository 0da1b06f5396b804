"""The words the app uses, each in a sentence or two for a learner, and a link to each from any page.

`term("DTW")` gives a Markdown link, `[DTW](glossary#dtw)`, for st.markdown, st.caption and st.info: it
opens the Glossary page at that entry in a new tab, so the page a class is looking at stays as it is.
"""

from __future__ import annotations

import re

from .common import presenting

# term -> what it means; grouped in the order a lesson meets them (the Glossary page keeps this order)
SECTIONS: dict[str, dict[str, str]] = {
    "Sound": {
        "waveform": "The air pressure a microphone measured, as numbers over time: 16,000 of them a second for "
                    "Whisper.",
        "STFT": "Short-time Fourier transform: the waveform cut into short overlapping windows (25 ms, one every "
                "10 ms for Whisper), each turned into how much of every frequency it holds.",
        "mel": "A frequency scale that follows the ear: equal steps in mels sound like equal steps in pitch, so "
               "low frequencies get more room than high ones.",
        "log-mel": "Whisper's input picture: the STFT's energy summed into 80 (or 128) mel bands per 10 ms frame, "
                   "then its logarithm, so quiet and loud sounds fit one scale. 30 s make 3,000 frames.",
        "stride": "How far a window or filter moves between two outputs. Whisper's second convolution has stride "
                  "2: 3,000 log-mel frames become 1,500 encoder positions, one every 20 ms.",
    },
    "Text": {
        "token": "A piece of text the model reads or writes in one step: a word, part of a word, a punctuation "
                 "mark, or a special token such as <|en|> or <|endoftext|>.",
        "␣ (leading space)": "Shown as ␣ at the start of a token: the token begins with a space, so it starts a new "
                             "word (\"␣sunny\" is one token, space included).",
        "timestamp token": "A special token such as <|2.40|> that the decoder writes between phrases to say when, "
                           "in seconds from the window's start, the phrase begins or ends.",
        "task tokens": "The tokens the decoder is given before it writes: <|startoftranscript|>, the language "
                       "(<|en|>), the task (<|transcribe|> or <|translate|>) and, without timestamps, "
                       "<|notimestamps|>.",
    },
    "The model": {
        "conv stem": "Two 1-D convolutions at the start of the encoder that turn log-mel frames into vectors; the "
                     "second has stride 2 and halves the number of frames.",
        "GELU": "Gaussian error linear unit: the smooth bend (like ReLU, but rounded near zero) applied after the "
                "conv stem and inside every MLP, so the network can learn more than straight lines.",
        "positional embedding": "A vector added to each position's input so the model knows where in time (encoder) "
                                "or where in the text (decoder) it is: attention by itself ignores order.",
        "encoder": "The half of Whisper that reads the whole log-mel at once and turns it into one vector per "
                   "20 ms of audio, for the decoder to consult.",
        "decoder": "The half of Whisper that writes the text, one token at a time, each step reading the tokens so "
                   "far and the encoder's output.",
        "attention head": "One of several parallel attention patterns in a layer: each decides for every position "
                          "how much to take from every other position, and heads learn different jobs.",
        "self-attention": "Attention within one sequence: encoder positions look at other audio positions, decoder "
                          "tokens look at earlier tokens.",
        "cross-attention": "Attention from the decoder to the encoder: each token being written looks at where in "
                           "the audio it is reading from.",
        "alignment head": "A cross-attention head whose attention follows the speech in time; Whisper uses a few of "
                          "them to estimate when each word was said.",
        "fine-tune": "Further training of a finished model on new data (a language, a field's vocabulary); the "
                     "result has the same shape with changed weights.",
    },
    "Decoding": {
        "logit": "The decoder's raw score for every token of the vocabulary at one step, before softmax; higher "
                 "means more likely.",
        "softmax": "Turns logits into probabilities that add up to 1: each logit exponentiated, divided by the sum.",
        "log-probability": "The natural logarithm of a probability: 0 is certain, -1 is about 37 %, -2.3 is 10 %. A "
                           "sentence's log-probability is the sum over its tokens.",
        "temperature": "Logits divided by it before softmax: below 1 sharpens the choice, above 1 flattens it. 0 "
                       "means always take the most likely token.",
        "greedy": "Decoding that takes the single most likely token at every step, never looking back.",
        "beam search": "Decoding that keeps the few best partial sentences (the beam, 5 by default) at every step "
                       "and returns the best finished one, so one early bad choice can be undone.",
        "patience": "How many finished candidates beam search collects before it stops, as a multiple of the beam "
                    "size: 1 stops at the beam size, 2 waits for twice as many.",
        "length penalty": "How beam search ranks finished sentences of different lengths: by total log-probability "
                          "divided by their length (or a power of it), so short ones do not win by being short.",
        "no-speech probability": "The probability the decoder gives the <|nospeech|> token at the first step: high "
                                 "means it thinks the window is silence or noise.",
        "compression ratio": "How much the text shrinks under gzip: a text that repeats itself compresses very "
                             "well, so above 2.4 whisper takes it for a loop and tries again.",
        "logit lens": "Reading an intermediate layer's output through the model's final layer, to see which token "
                      "it would already predict there.",
    },
    "Measuring": {
        "entropy": "How spread out a probability distribution is: 0 when one choice has all of it, higher when "
                   "many share it. Measured in bits (log base 2) or nats.",
        "nats": "The unit of entropy and log-probability with the natural logarithm; 1 nat is about 1.44 bits.",
        "WER": "Word error rate: substituted, deleted and inserted words divided by the number of reference words. "
               "Insertions count too, so a transcript that invents words can score above 100 %.",
        "DTW": "Dynamic time warping: the cheapest monotonic path through a cost matrix (here, tokens against "
               "audio frames, from the alignment heads), which gives each word a start and an end.",
        "monotonic": "Only ever moving forward: a monotonic alignment never goes back in time from one word to the "
                     "next.",
        "sharpness": "How concentrated a head's attention is: a sharp head puts most of its weight on a few audio "
                     "frames, a blurry one spreads it.",
        "hallucination": "Text the model writes that was not said: loops, stock phrases (\"Thanks for watching!\") "
                         "or fluent words over silence or noise.",
    },
}
GLOSSARY: dict[str, str] = {name: text for section in SECTIONS.values() for name, text in section.items()}
_LOWER = {name.lower(): name for name in GLOSSARY}


def anchor(name: str) -> str:
    """The entry's anchor on the Glossary page: 'log-mel' -> 'log-mel', 'no-speech probability' ->
    'no-speech-probability', '␣ (leading space)' -> 'leading-space'."""
    return re.sub(r"[^a-z0-9]+", "-", _LOWER.get(name.lower(), name).lower()).strip("-")


def term(name: str, shown: str | None = None) -> str:
    """A Markdown link to the Glossary's entry for `name` (any case), shown as `shown` (default: the name).
    It opens in a new tab (Streamlit's links do), in presenter mode if the class is watching one."""
    if name.lower() not in _LOWER:
        raise KeyError(f"no glossary entry {name!r}")
    label = (shown or name).replace("[", "\\[").replace("]", "\\]")
    query = "?presenter=1" if presenting() else ""
    return f"[{label}](glossary{query}#{anchor(name)})"


def define(name: str) -> str:
    """The entry's text, for a tooltip (help=...) or a caption."""
    return GLOSSARY[_LOWER[name.lower()]]
