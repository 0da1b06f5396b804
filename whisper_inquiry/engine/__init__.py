"""The engine that owns a loaded model and serves every session: the interface pages use
(`protocol`, `core.Engine`, `factory.engine_for`), the worker thread and its turns (`worker`), the
experiments it runs as jobs (`jobs`), the rows in flight that share each decoder step (`continuous`) and
the step's plan (`scheduler`), their key/value slots (`slots`), the batched step that decides every
greedy or sampled row at once (`batched`, with whisper's filters over a batch in `step_filters`),
lockstep groups (`lockstep`), drafted Live refreshes (`drafts`), the decoder's one forward (`decoder`),
its last matmul (`unembed`) and the process-wide settings its launchers make (`threads`).
"""

from whisper_inquiry import lazy_names

_HOMES = {  # public name -> the module that defines it
    "Engine": "core", "AnalysisRequest": "core", "AudioInput": "core",
    "EngineProtocol": "protocol",
    "engine_for": "factory",
}
__all__ = list(_HOMES)
__getattr__ = lazy_names(__name__, _HOMES)
