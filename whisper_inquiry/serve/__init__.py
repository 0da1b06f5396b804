"""The engine past one machine: a Ray Serve application (`app`: `python -m whisper_inquiry.serve`,
Serve import path `whisper_inquiry.serve.app:build_app`) and the client the app uses to reach it
(`client`, which needs no Ray).
"""

from whisper_inquiry import lazy_names

_HOMES = {  # public name -> the module that defines it
    "build_app": "app",
    "ServeEngine": "client",
}
__all__ = list(_HOMES)
__getattr__ = lazy_names(__name__, _HOMES)
