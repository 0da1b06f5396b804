"""Models in: the bundled CTranslate2 weights converted to openai-whisper (`ct2`), Hugging Face
checkpoints (`hf`), the catalogue and loader every caller uses (`load`), and the token embedding and
language names (`vocab`).
"""

from whisper_inquiry import lazy_names

_HOMES = {  # public name -> the module that defines it
    "DEFAULT_MODEL": "load", "ModelSource": "load", "list_models": "load", "load_model": "load",
    "check_model": "load", "is_multilingual": "load", "model_info": "load", "default_device": "load",
}
__all__ = list(_HOMES)
__getattr__ = lazy_names(__name__, _HOMES)
