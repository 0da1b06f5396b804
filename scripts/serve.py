"""Start the app as `streamlit run app.py`, with Streamlit's legacy `pages/` discovery switched off.

Streamlit decides per process whether a top-level `pages/` folder means its old multipage mode, and
only forgets it once `st.navigation` has run. Until then a deep link such as /encoder, if it is the
first request the server sees, runs pages/sound_to_text/encoder.py on its own, without app.py's sidebar and
analysis. Setting the flag before the server starts makes every request go through app.py.

`--engine URL` (ours, not Streamlit's) sends every analysis to a Ray Serve endpoint (`make serve`) by
setting WHISPER_INQUIRY_ENGINE; without it the app analyses in this process. Other arguments go to
`streamlit run` unchanged.
"""

import os
import sys
from pathlib import Path

# Streamlit runs every session's script on its own thread; with OpenMP's default busy-waiting, the idle
# thread teams of one session spin on the cores another session's torch work needs (measured here: the
# Encoder page's head summaries took 1.5 s instead of 0.13 s). Passive waiting hands the cores back.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web import cli

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the library, as Streamlit gives it to app.py

from whisper_inquiry.engine.threads import prepare_engine_process  # noqa: E402


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates its own malloc arena, and every analysis runs on threads of
    its own: the arenas fragment and the server's memory creeps up. Measured with bench/load.py, 200
    analyses: 1831 -> 2051 MB and still rising with glibc's default, 1326 -> 1504 MB and no trend with
    two arenas. (Set before any thread starts; elsewhere than glibc it does nothing.) Fixing glibc's
    mmap threshold as well kept memory flatter still, but was suspected of slowing the app: left alone."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return  # glibc read it at start
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def _refuse(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def take_engine_flag(args: list[str]) -> tuple[str | None, list[str]]:
    """`--engine URL` or `--engine=URL` out of the arguments; the rest stays for Streamlit."""
    rest, url, i = [], None, 0
    while i < len(args):
        if args[i] == "--engine":
            if i + 1 >= len(args) or args[i + 1].startswith("-"):
                _refuse("--engine needs the Ray Serve endpoint's URL, e.g. --engine http://127.0.0.1:8000/")
            url, i = args[i + 1], i + 2
        elif args[i].startswith("--engine="):
            url, i = args[i].split("=", 1)[1], i + 1
        else:
            rest.append(args[i])
            i += 1
    return url, rest


if __name__ == "__main__":
    limit_malloc_arenas()
    prepare_engine_process()  # every session's engine calls share this process with the pages being drawn
    engine, streamlit_args = take_engine_flag(sys.argv[1:])
    if engine is not None:
        if not engine.startswith(("http://", "https://")):
            _refuse(f"--engine takes an http:// URL of the Ray Serve endpoint, not {engine!r}")
        os.environ["WHISPER_INQUIRY_ENGINE"] = engine
    PagesManager.uses_pages_directory = False
    app = str(ROOT / "app.py")
    sys.argv = ["streamlit", "run", app, *streamlit_args]
    sys.exit(cli.main())
