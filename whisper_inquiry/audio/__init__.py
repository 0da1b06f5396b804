"""Audio in: any file or bytes decoded to 16 kHz mono as whisper hears it (`load`), the librosa
analyses the Audio page draws (`signal`), the changes an experiment makes to a clip (`perturb`), the
bundled clips (`samples`) and a live microphone's rolling buffer (`microphone`).
"""

from whisper_inquiry import lazy_names

_HOMES = {  # public name -> the module that defines it
    "SAMPLE_RATE": "load", "Audio": "load", "load_audio": "load", "to_wav_bytes": "load",
}
__all__ = list(_HOMES)
__getattr__ = lazy_names(__name__, _HOMES)
