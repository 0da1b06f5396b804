"""Every knob of one analysis in one frozen dataclass, checked once when it is made.

Modelled on openai-whisper's `DecodingOptions`: the options travel whole, are saved into the Trace,
and turn into `whisper.transcribe` keyword arguments in exactly one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from whisper_inquiry.errors import OptionsError

STRATEGIES = ("greedy", "beam", "sampling")
TASKS = ("transcribe", "translate")
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # whisper.transcribe's default ladder


@dataclass(frozen=True)
class AnalysisOptions:
    """What to decode and how, plus how much of the internals to keep."""

    task: str = "transcribe"
    language: str | None = None  # None: detect (multilingual models); English-only models use "en"
    strategy: str = "greedy"
    beam_size: int = 5
    patience: float | None = None
    length_penalty: float | None = None
    temperature: float = 0.7  # sampling only
    best_of: int = 5  # sampling only
    fallback: bool = True  # whisper.transcribe's temperature fallback on a failed window
    timestamps: bool = True
    top_k: int = 10  # alternatives kept for every decoding step
    initial_prompt: str | None = None
    condition_on_previous_text: bool = True
    compression_ratio_threshold: float | None = 2.4
    logprob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    qk_budget_mb: float = 12.0  # encoder q/k kept for exact on-demand heads while they fit
    cross_budget_mb: float = 3.0  # cross-attention kept per window, pooled in time to fit
    seed: int = 0  # torch RNG seed for the run: sampling (and temperature fallback) gives the same text each time

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise OptionsError(f"task must be one of {', '.join(TASKS)}, not {self.task!r}")
        if self.strategy not in STRATEGIES:
            raise OptionsError(f"strategy must be one of {', '.join(STRATEGIES)}, not {self.strategy!r}")
        if not 1 <= self.beam_size <= 16:
            raise OptionsError(f"beam size must be between 1 and 16, not {self.beam_size}")
        if self.patience is not None and self.patience <= 0:
            raise OptionsError("patience must be positive")
        if self.length_penalty is not None and not 0 <= self.length_penalty <= 1:
            raise OptionsError("length penalty must be between 0 and 1")
        if self.strategy == "sampling" and not 0 < self.temperature <= 2:
            raise OptionsError("sampling temperature must be in (0, 2]")
        if not 1 <= self.best_of <= 16:
            raise OptionsError("best_of must be between 1 and 16")
        if not 1 <= self.top_k <= 50:
            raise OptionsError("top-k must be between 1 and 50")
        if not 0 <= self.seed < 2**63:
            raise OptionsError(f"seed must be a whole number from 0 to 2**63 - 1, not {self.seed}")
        if self.language is not None and not self.language.strip():
            raise OptionsError("language must be a code such as 'en', or left empty to detect it")

    def transcribe_kwargs(self, model_is_multilingual: bool, fp16: bool) -> dict:
        """Keyword arguments for `whisper.transcribe` that reproduce these options."""
        language = self.language if model_is_multilingual else "en"
        if self.strategy == "sampling":
            temperature: float | tuple[float, ...] = self.temperature
            if self.fallback:
                temperature = (self.temperature,) + tuple(t for t in FALLBACK_TEMPERATURES if t > self.temperature)
        else:
            temperature = FALLBACK_TEMPERATURES if self.fallback else 0.0
        kwargs = dict(
            task=self.task,
            language=language,
            temperature=temperature,
            without_timestamps=not self.timestamps,
            initial_prompt=self.initial_prompt or None,
            condition_on_previous_text=self.condition_on_previous_text,
            compression_ratio_threshold=self.compression_ratio_threshold,
            logprob_threshold=self.logprob_threshold,
            no_speech_threshold=self.no_speech_threshold,
            fp16=fp16,
            verbose=None,
        )
        if self.strategy == "beam":
            kwargs.update(beam_size=self.beam_size, patience=self.patience)
        if self.strategy == "sampling":
            kwargs.update(best_of=self.best_of)
        if self.length_penalty is not None:
            kwargs.update(length_penalty=self.length_penalty)
        return kwargs

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AnalysisOptions:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
