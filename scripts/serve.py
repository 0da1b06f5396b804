"""Start the app as `streamlit run app.py`, with Streamlit's legacy `pages/` discovery switched off.

Streamlit decides per process whether a top-level `pages/` folder means its old multipage mode, and
only forgets it once `st.navigation` has run. Until then a deep link such as /encoder, if it is the
first request the server sees, runs pages/encoder.py on its own, without app.py's sidebar and
analysis. Setting the flag before the server starts makes every request go through app.py.
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

if __name__ == "__main__":
    PagesManager.uses_pages_directory = False
    app = str(Path(__file__).resolve().parent.parent / "app.py")
    sys.argv = ["streamlit", "run", app, *sys.argv[1:]]
    sys.exit(cli.main())
