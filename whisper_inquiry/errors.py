"""Errors a person can act on, raised where input enters the library.

Each carries a one-line message meant to be shown as-is in the CLI (`error: ...`) and the app
(`st.error(...)`), so messages name the file and say what to do rather than what failed inside.
"""


class InquiryError(Exception):
    """Base of every error the library raises for bad input or missing resources."""


class AudioError(InquiryError):
    """The audio cannot be used: empty, not audio, undecodable, too long or non-finite."""


class ModelUnavailableError(InquiryError):
    """The requested model is neither bundled, on disk, nor downloadable from here."""


class OptionsError(InquiryError):
    """An analysis option is out of range or contradicts another one."""


class TraceFormatError(InquiryError):
    """A saved trace is not one this version can read."""


class ModelMismatchError(InquiryError):
    """A question about a trace needs the model that made it, and another one was asked."""


class CancelledError(InquiryError):
    """The request was cancelled (its session closed) before its window was decoded."""


class EngineClosedError(InquiryError):
    """The engine was closed (the app let its model go): the request was not run."""


class CorpusError(InquiryError):
    """A corpus cannot be read: no audio in it, a zip over the limits, or not a corpus at all."""
