"""Which engine answers the app: the in-process Engine, or a Ray Serve endpoint when one is named.

`make run` stays one process with no Ray: WHISPER_INQUIRY_ENGINE unset means Engine.load here. Set it
to the Serve application's URL (`scripts/serve.py --engine http://host:8000/`) and every analysis goes
there instead. Pages never know which: both answer protocol.EngineProtocol, with equal Traces.
"""

from __future__ import annotations

import os

from whisper_inquiry.engine.core import Engine
from whisper_inquiry.engine.protocol import EngineProtocol
from whisper_inquiry.models.load import DEFAULT_MODEL, ModelSource, list_models

__all__ = ["DEFAULT_MODEL", "EngineProtocol", "ModelSource", "engine_for", "engine_url", "list_models"]

ENGINE_VARIABLE = "WHISPER_INQUIRY_ENGINE"


def engine_url() -> str | None:
    """The Serve endpoint named by WHISPER_INQUIRY_ENGINE, or None to analyse in this process."""
    url = os.environ.get(ENGINE_VARIABLE, "").strip()
    return url or None


def engine_for(model_name: str, device: str | None = None) -> EngineProtocol:
    """The engine for `model_name` (the app caches one per name): a ServeEngine when an endpoint is named,
    else the in-process Engine, loaded and warmed up. Both answer EngineProtocol."""
    url = engine_url()
    if url is None:
        return Engine.load(model_name, device)
    from whisper_inquiry.serve.client import ServeEngine  # the client needs no Ray, only the wire format

    return ServeEngine(url, model=model_name)
