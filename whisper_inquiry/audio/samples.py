"""The project's own audio: synthetic speech (espeak-ng) and signals that teach (silence, noise, a chirp).

Made by `scripts/make_samples.sh` and committed, so the app opens on real audio and the tests run
with no outside data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"
DEMO_CORPUS = SAMPLES_DIR / "corpus"  # a few dozen short clips with exact references (scripts/make_corpus.sh)


@dataclass(frozen=True)
class Sample:
    name: str
    file: str
    about: str
    expected: str | None = None  # what a bundled model hears, where it hears it right

    @property
    def path(self) -> Path:
        return SAMPLES_DIR / self.file


SAMPLES = [
    Sample("English: the weather", "english_weather.flac", "Synthetic English speech (espeak-ng), two sentences, 9 s.",
           "The weather today is sunny with light breeze. Tomorrow we expect rain in the afternoon."),
    Sample("English: numbers", "english_numbers.flac",
           "Digits and times spoken as words: watch how Whisper writes them as numerals.",
           "Please call me at 5551234 The meeting starts at 930"),
    Sample("English: a longer passage", "english_story.flac",
           "24 s of synthetic English filling most of one 30 s window; tiny.en mishears a few words that "
           "base gets right (try Compare)."),
    Sample("Spanish", "spanish.flac",
           "Synthetic Spanish speech: language ID and translation on the multilingual base model; "
           "the English-only tiny.en invents English words for it."),
    Sample("Silence", "silence.flac", "Five seconds of digital silence: see the no-speech probability."),
    Sample("White noise", "white_noise.flac", "Five seconds of noise: a classic trigger of hallucinations."),
    Sample("Chirp", "chirp.flac", "A tone sweeping from 100 Hz to 4 kHz: read the mel scale off the spectrogram."),
]
DEFAULT_SAMPLE = SAMPLES[0]


def sample_named(name: str) -> Sample:
    for sample in SAMPLES:
        if sample.name == name or sample.file == name or Path(sample.file).stem == name:
            return sample
    raise KeyError(name)
