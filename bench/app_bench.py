"""`python bench/app_bench.py`: how fast the Encoder page draws in a real browser, and what it sends.

Starts the app, uploads a 30 s clip (the bundled English samples, looped), waits for the analysis,
then times in headless Debian Chromium: opening the Encoder page until every chart is drawn, and
switching the layer and the head. Bytes are what the server sent over the page's websocket.
Ends with one JSON line.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from whisper_inquiry.bench import thirty_seconds  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _idle(page, timeout_s: float = 300) -> None:
    """Streamlit marks its root element with the script state; wait until it stays 'notRunning'."""
    end, stable = time.time() + timeout_s, 0
    while time.time() < end:
        state = page.locator('[data-testid="stApp"]').get_attribute("data-test-script-state")
        stable = stable + 1 if state == "notRunning" else 0
        if stable >= 3:
            return
        time.sleep(0.1)
    raise TimeoutError("the app did not finish its run")


def _charts_drawn(page, n: int, timeout_s: float = 60) -> None:
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {n}",
                           timeout=timeout_s * 1000)


def main() -> dict:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "scripts/serve.py", "--server.port", str(port)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    clip = Path(tempfile.mkdtemp()) / "thirty_seconds.wav"
    sf.write(clip, thirty_seconds([], limit_s=29.0), 16000, subtype="PCM_16")
    received = {"bytes": 0}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 2400})
            page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: received.__setitem__(
                "bytes", received["bytes"] + len(payload))))
            for _ in range(120):
                try:
                    page.goto(f"http://127.0.0.1:{port}/")
                    break
                except Exception:  # noqa: BLE001 - the server is still starting
                    time.sleep(0.5)
            _idle(page)
            page.get_by_text("Upload a file").click()
            _idle(page)
            page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(clip))
            _idle(page)

            received["bytes"] = 0
            started = time.perf_counter()
            page.get_by_text("Encoder", exact=True).first.click()
            _idle(page)
            idle_s = time.perf_counter() - started
            _charts_drawn(page, 7)
            open_s = time.perf_counter() - started
            print(f"page script finished after {idle_s:.2f} s, all charts drawn after {open_s:.2f} s")
            open_bytes = received["bytes"]

            switch = []
            for label, option in (("Layer", "1"), ("Head", "4")):
                received["bytes"] = 0
                started = time.perf_counter()
                box = page.get_by_role("combobox", name=label, exact=True)
                box.click()
                box.fill(option)
                page.keyboard.press("Enter")
                _idle(page)
                _charts_drawn(page, 7)
                switch.append((time.perf_counter() - started, received["bytes"]))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    result = {
        "encoder_page_open_s": round(open_s, 2),
        "encoder_page_bytes": open_bytes,
        "switch_layer_s": round(switch[0][0], 2),
        "switch_layer_bytes": switch[0][1],
        "switch_head_s": round(switch[1][0], 2),
        "switch_head_bytes": switch[1][1],
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
