"""Regenerate the README's screenshot of the web editor (docs/ui_screenshot.png).

The editor is started with the README's own `ganedit ui` command line (read from README.md,
on a free port: `--port 0` is the one addition), driven in Debian's headless chromium like a
user would (draw a face, move a slider, compare two methods), and the whole page is saved.
The command is recorded in the PNG (text chunk `ganedit-command`), so a test can tell a
screenshot of another command line from one of the README's.

Usage (needs the `ui` and `browser-test` extras, and `chromium` + `chromium-driver`):
    python scripts/make_ui_screenshot.py [--out docs/ui_screenshot.png]
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WIDTH = 1400
SEED = 3  # a young world64 face: the age directions have room to move it
STRENGTH = 0.8  # of the edited direction and of the side-by-side pair, latent units
TIMEOUT = 300
COMMAND_KEY = "ganedit-command"


def readme_command(readme: Path = ROOT / "README.md") -> list[str]:
    """The README's one `ganedit ui` line (comment dropped), split as a shell would."""
    lines = [
        line
        for block in re.findall(r"^```bash\n(.*?)^```", readme.read_text(), flags=re.S | re.M)
        for line in block.splitlines()
        if line.strip().startswith("ganedit ui")
    ]
    if len(lines) != 1:
        raise SystemExit(f"expected one `ganedit ui` line in {readme}, received {len(lines)}")
    return shlex.split(lines[0], comments=True)


def start_server(command: list[str]) -> tuple[subprocess.Popen, str]:
    """The README's command on a free port, from the repository root (its paths are relative
    to it); returns the process and the page's address."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "ganedit", *command[1:], "--port", "0"]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        print(line, end="", file=sys.stderr)
        found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if found:
            return proc, found.group(1)
    raise SystemExit(f"`{shlex.join(command)}` did not start (exit {proc.wait()})")


def open_browser(profile: str):
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not fetch anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-extensions", "--no-first-run", f"--window-size={WIDTH},1000",
                 f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait_idle(driver, after: int) -> int:
    """Until a render newer than `after` shows the current face and nothing is in flight;
    returns the page's render count."""
    from selenium.webdriver.support.ui import WebDriverWait

    def idle(_):
        d = driver.execute_script("return {...document.body.dataset}")
        done = (
            int(d.get("renders") or 0) > after
            and d.get("requests") == "0"
            and not d.get("busy")
            and d.get("renderedFace") == d.get("face")
        )
        return int(d["renders"]) if done else False

    return WebDriverWait(driver, TIMEOUT, poll_frequency=0.1).until(idle)


def set_value(driver, element_id: str, value, event: str) -> None:
    """Set a control as a user would and fire the event its page listens to."""
    driver.execute_script(
        "const e = document.getElementById(arguments[0]); e.value = arguments[1];"
        "e.dispatchEvent(new Event(arguments[2]));",
        element_id,
        str(value),
        event,
    )


def drive(driver, url: str) -> None:
    """Draw a face, move one direction and compare the default pair at one strength."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, TIMEOUT).until(
        lambda d: d.execute_script("return document.body.dataset.ready") == "1"
    )
    renders = wait_idle(driver, 0)
    set_value(driver, "seed", SEED, "change")
    driver.execute_script("document.getElementById('draw').click()")
    renders = wait_idle(driver, renders)
    pair = driver.execute_script(
        "return ['compare-a', 'compare-b'].map(id => document.getElementById(id).value)"
    )
    set_value(driver, f"slider-{pair[0]}", STRENGTH, "input")
    renders = wait_idle(driver, renders)
    driver.execute_script("document.getElementById('compare-on').click()")
    renders = wait_idle(driver, renders)
    set_value(driver, "compare-strength", STRENGTH, "input")
    wait_idle(driver, renders)


def save(driver, out: Path, command: list[str]) -> None:
    """The whole page (the window grown to its height) as a PNG recording the command."""
    from PIL import Image, PngImagePlugin

    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, height)
    frame = height - driver.execute_script("return window.innerHeight")  # the window's own
    driver.set_window_size(WIDTH, height + frame)
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "page.png"
        driver.save_screenshot(str(shot))
        info = PngImagePlugin.PngInfo()
        info.add_text(COMMAND_KEY, shlex.join(command))
        with Image.open(shot) as image:
            image.convert("RGB").save(out, pnginfo=info, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui_screenshot.png")
    args = parser.parse_args()
    command = readme_command()
    proc, url = start_server(command)
    profile = tempfile.mkdtemp(prefix="ganedit-screenshot-")
    try:
        driver = open_browser(profile)
        try:
            drive(driver, url)
            save(driver, args.out, command)
        finally:
            driver.quit()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        shutil.rmtree(profile, ignore_errors=True)
    print(f"{args.out}: `{shlex.join(command)}` (on a free port)")


if __name__ == "__main__":
    main()
