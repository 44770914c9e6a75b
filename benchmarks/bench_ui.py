"""The web editor's start-up time and slider round-trip latency: ganedit's own FastAPI page
(`ganedit ui`) and, when gradio is importable, a gradio prototype over the same editing
service (the alternative docs/ui.md weighs).

A "slider update" is what the page sends while a slider is dragged: one HTTP request with
the sliders' state, answered with the rendered face (PNG) and its read-out (evaluator
probabilities, identity cosine). Timed end to end from the client: request sent to PNG bytes
received, over one kept-alive connection, like a browser. Start-up: process started to the
first answered request (models loaded, one face drawn). Medians and p90 over the updates;
a same-run fp32 matmul reference tells a slow machine from a slow run.

In a browser (`--browser-updates N`, needs selenium and Debian's chromium): the time from
setting the slider's value to the new image decoded in the page, for both pages.

Usage:
    python benchmarks/bench_ui.py [--updates 200] [--browser-updates 100] [--skip-gradio]
    # gradio in a throwaway venv (never in .venv), served by that venv's interpreter:
    python3.11 -m venv /tmp/gr && /tmp/gr/bin/pip install torch==2.13.0 gradio \
        && /tmp/gr/bin/pip install -c constraints.txt -e .
    python benchmarks/bench_ui.py --browser-updates 100 --gradio-python /tmp/gr/bin/python
    /tmp/gr/bin/python benchmarks/bench_ui.py --only-gradio   # + through gradio_client
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOUNDARIES = ROOT / "docs" / "directions_report" / "boundaries"
AGE = [BOUNDARIES / "regression_age.npy", BOUNDARIES / "interfacegan_age.npy"]


def matmul_gflops() -> float:
    import torch

    a = torch.randn(1024, 1024)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - start)
    return 2 * 1024**3 / statistics.median(times) / 1e9


def _summary(ms: list[float]) -> dict:
    ordered = sorted(ms)
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms),
        "p90_ms": ordered[int(0.9 * (len(ordered) - 1))],
        "max_ms": ordered[-1],
    }


def _sweep(n: int) -> list[float]:
    """Strengths a drag passes through: 0 -> 1.5 -> -1.5 -> ..., 0.05 apart."""
    values, v, step = [], 0.0, 0.05
    for _ in range(n):
        v += step
        if abs(v) > 1.5:
            step = -step
            v += 2 * step
        values.append(round(v, 4))
    return values


# ------------------------------------------------------------------ ganedit's FastAPI page


def bench_fastapi(updates: int, browser_updates: int) -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "ganedit", "ui", "--port", "0"]
    args += [a for p in AGE for a in ("-b", str(p))]
    began = time.perf_counter()
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        port = None
        while port is None:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"ganedit ui did not start: {proc.stderr.read()}")
            found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            port = int(found.group(1)) if found else None
        conn = _wait_http(port)
        startup = time.perf_counter() - began
        face = _post(conn, "/api/face", {"generator": "world64", "seed": 3})["face"]
        report = {"startup_s": startup}
        report["update"] = _render_loop(conn, face, updates, compare=False)
        report["update_side_by_side"] = _render_loop(conn, face, updates, compare=True)
        if browser_updates:
            report["browser_update"] = in_browser(port, OWN_PAGE_STEP, browser_updates)
        return report
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def _wait_http(port: int, timeout: float = 120) -> http.client.HTTPConnection:
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/api/info")
            conn.getresponse().read()
            return conn
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _post(conn, path: str, body: dict) -> dict:
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {data[:200]!r}")
    return json.loads(data)


def _render_loop(conn, face: str, updates: int, compare: bool) -> dict:
    ms = []
    for k, strength in enumerate(_sweep(updates + 5)):
        body = {"face": face, "state": {"strengths": {"regression_age": strength}}}
        if compare:
            body["compare"] = {"a": "regression_age", "b": "interfacegan_age", "strength": strength}
        start = time.perf_counter()
        result = _post(conn, "/api/render", body)
        elapsed = 1000 * (time.perf_counter() - start)
        assert result["image"].startswith("data:image/png;base64,")
        if k >= 5:  # the first few warm the connection and the allocator
            ms.append(elapsed)
    return _summary(ms)


# ------------------------------------------------------------------ the gradio prototype

GRADIO_APP = """
import sys
import numpy as np
import gradio as gr
from ganedit.editing.service import EditingService, EditState, ServiceConfig

service = EditingService(ServiceConfig(boundaries=tuple(sys.argv[2:])))
face = service.face_from_seed("world64", 3).id

def edit(strength):
    rendered = service.render(face, [EditState.of({"regression_age": float(strength)})])[0]
    return rendered.image, {k: round(v, 4) for k, v in rendered.readout.items()}

with gr.Blocks(analytics_enabled=False) as demo:
    slider = gr.Slider(-3, 3, value=0, step=0.05, label="age (regression)", elem_id="strength")
    image = gr.Image(type="numpy", format="png", label="face", elem_id="face")
    readout = gr.JSON(label="read-out")
    slider.change(edit, slider, [image, readout], api_name="edit", trigger_mode="always_last")
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), share=False,
            show_error=False, quiet=True)
"""


def bench_gradio(updates: int, browser_updates: int, python: str) -> dict:
    """The gradio prototype served by `python` (an interpreter with gradio and ganedit);
    timed through gradio_client when this interpreter has it, and in the browser."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    args = [python, "-c", GRADIO_APP, str(port), *map(str, AGE)]
    began = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_http_get(port)
        report = {"startup_s": time.perf_counter() - began}
        if importlib.util.find_spec("gradio_client") is not None:
            report["update"] = _gradio_client_loop(port, updates)
        if browser_updates:
            report["browser_update"] = in_browser(port, GRADIO_STEP, browser_updates)
        return report
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _gradio_client_loop(port: int, updates: int) -> dict:
    from gradio_client import Client

    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    ms = []
    for k, strength in enumerate(_sweep(updates + 5)):
        start = time.perf_counter()
        image, _ = client.predict(strength, api_name="/edit")
        elapsed = 1000 * (time.perf_counter() - start)
        assert Path(image).is_file()
        if k >= 5:
            ms.append(elapsed)
    return _summary(ms)


# ------------------------------------------------------------------ in a real browser

# Each step: set the slider's value as a drag would, fire its events, and time until the new
# image is decoded in the page (the user-visible update). The argument is the value.
OWN_PAGE_STEP = """
const done = arguments[arguments.length - 1];
const range = document.getElementById('slider-regression_age');
const img = document.getElementById('face-img');
const before = img.src, t0 = performance.now();
const check = () => {
  if (img.src !== before && img.complete && img.naturalWidth > 0 && !document.body.dataset.busy) {
    done(performance.now() - t0); return;
  }
  requestAnimationFrame(check);
};
range.value = String(arguments[0]);
range.dispatchEvent(new Event('input', {bubbles: true}));
requestAnimationFrame(check);
"""
GRADIO_STEP = """
const done = arguments[arguments.length - 1];
const range = document.querySelector('#strength input[type=range]');
const box = document.querySelector('#face');
const before = (box.querySelector('img') || {}).src, t0 = performance.now();
const check = () => {
  const img = box.querySelector('img');
  if (img && img.src && img.src !== before && img.complete && img.naturalWidth > 0) {
    done(performance.now() - t0); return;
  }
  requestAnimationFrame(check);
};
Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(range, String(arguments[0]));
for (const kind of ['input', 'change']) range.dispatchEvent(new Event(kind, {bubbles: true}));
range.dispatchEvent(new PointerEvent('pointerup', {bubbles: true}));
requestAnimationFrame(check);
"""


def in_browser(port: int, step_script: str, updates: int) -> dict:
    """Median update time in headless chromium (Debian's, through its chromedriver)."""
    import tempfile

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tempfile.mkdtemp()}"]  # fmt: skip
    for flag in flags:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.set_script_timeout(60)
        driver.get(f"http://127.0.0.1:{port}/")
        time.sleep(8)  # the page draws its first face
        ms = [driver.execute_async_script(step_script, v) for v in _sweep(updates + 5)]
        return _summary(ms[5:])
    finally:
        driver.quit()


def _wait_http_get(port: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("gradio did not start")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--browser-updates", type=int, default=0, help="0: no browser runs")
    parser.add_argument("--skip-gradio", action="store_true")
    parser.add_argument("--only-gradio", action="store_true")
    parser.add_argument("--gradio-python", default=sys.executable)
    args = parser.parse_args()
    report = {
        "torch_threads": __import__("torch").get_num_threads(),
        "matmul_gflops": matmul_gflops(),
    }
    if not args.only_gradio:
        report["fastapi"] = bench_fastapi(args.updates, args.browser_updates)
    if not args.skip_gradio:
        probe = [args.gradio_python, "-c", "import gradio"]
        if subprocess.run(probe, capture_output=True).returncode != 0:
            report["gradio"] = "not installed for --gradio-python (see the usage line)"
        else:
            report["gradio"] = bench_gradio(args.updates, args.browser_updates, args.gradio_python)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
