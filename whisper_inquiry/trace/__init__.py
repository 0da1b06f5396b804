"""The Trace: what one instrumented run returns, as plain frozen dataclasses and numpy arrays
(`schema`), its file without pickle (`serialize`), text and subtitle exports (`export`), values derived
from it and cached by content (`derived`), and how two traces are compared (`sameness`). Importing it
pulls in neither torch nor whisper.
"""

from whisper_inquiry import lazy_names

_HOMES = {  # public name -> the module that defines it
    "Trace": "schema", "TRACE_VERSION": "schema",
    "load_trace": "serialize", "save_trace": "serialize",
}
__all__ = list(_HOMES)
__getattr__ = lazy_names(__name__, _HOMES)
