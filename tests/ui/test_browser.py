"""The web editor in a real headless chromium (Debian's `chromium` and `chromium-driver`,
driven by Selenium; nothing is downloaded): `make test-browser` or `pytest -m browser`.

A real `ganedit ui` process serves on a free loopback port; the tests move a slider, upload a
world render, and export a code that `ganedit edit` then reads. Screenshots go to
`artifacts/browser/` (ignored by git)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from ui_serving import wait_until_serving

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
BOUNDARIES = ROOT / "docs" / "directions_report" / "boundaries"
AGE = [BOUNDARIES / "regression_age.npy", BOUNDARIES / "interfacegan_age.npy"]
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--window-size=1400,900",
)  # fmt: skip
YOUNG_SEED = 3  # a world64 face the evaluator reads as young


def _need_browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if missing:
        pytest.skip(f"browser tests need Debian's chromium and chromium-driver: {missing} absent")
    pytest.importorskip("selenium", reason="browser tests need the browser-test extra")


@pytest.fixture(scope="module")
def foreign_boundary(tmp_path_factory) -> Path:
    """world64's age direction relabelled as world64-v1's: refused in the page."""
    from ganedit.directions.io import load_boundary, save_boundary
    from ganedit.models.sources import generator_identity

    v1 = generator_identity("world64-v1")
    direction, _ = load_boundary(AGE[0])
    path = tmp_path_factory.mktemp("foreign") / "v1_age.npy"
    save_boundary(path, direction, {"generator": v1["name"], "generator_sha256": v1["sha256"],
                                    "space": "w", "attribute": "age", "method": "regression"})  # fmt: skip
    return path


@pytest.fixture(scope="module")
def server(foreign_boundary, tmp_path_factory):
    _need_browser()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    args = ["ui", "--port", "0", *[a for p in (*AGE, foreign_boundary) for a in ("-b", p)]]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ganedit", *map(str, args)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=tmp_path_factory.mktemp("server"), env=env,
    )  # fmt: skip
    try:
        port = _port(proc)
        wait_until_serving(port)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0 and "Traceback" not in err, err


def _port(proc) -> int:
    deadline, seen = time.monotonic() + 120, ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if found:
            return int(found.group(1))
    raise AssertionError(f"the server did not start:\n{seen}\n{proc.stderr.read()}")


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(server, downloads):
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not fetch anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="ganedit-chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.set_page_load_timeout(60)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        driver.get(server)
        _wait(driver, lambda: driver.execute_script("return document.body.dataset.ready") == "1")
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# ------------------------------------------------------------------ helpers


def _wait(driver, condition, timeout: float = 60, what: str = "the page"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    _shot(driver, "timeout")
    raise AssertionError(f"{what} did not get there in {timeout} s; error box: {_error(driver)!r}")


def _renders(driver) -> int:
    return int(driver.execute_script("return document.body.dataset.renders || '0'"))


def _settled(driver, after: int):
    """Until a render newer than `after` has arrived and none is pending."""

    def done():
        busy = driver.execute_script("return document.body.dataset.busy")
        return _renders(driver) > after and not busy

    _wait(driver, done, what="the render")


def _readout(driver, key: str, table: str = "readout") -> float:
    from selenium.webdriver.common.by import By

    cell = driver.find_element(By.CSS_SELECTOR, f"#{table} tr[data-key='{key}'] td.value")
    return float(cell.get_attribute("data-value"))


def _src(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).get_attribute("src") or ""


def _error(driver) -> str:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, "error")
    return box.text if box.is_displayed() else ""


def _shot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def _draw(driver, seed: int) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, "seed")
    field.clear()
    field.send_keys(str(seed))
    before = _renders(driver)
    driver.find_element(By.ID, "draw").click()
    _settled(driver, before)


def _drag(driver, slider_id: str, presses: int) -> None:
    """Move a range input by keyboard: one input event per step, as a drag sends them."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    slider = driver.find_element(By.ID, slider_id)
    slider.click()  # focus (a click in the middle sets the value to 0)
    key = Keys.ARROW_RIGHT if presses > 0 else Keys.ARROW_LEFT
    before = _renders(driver)
    for _ in range(abs(presses)):
        slider.send_keys(key)
    _settled(driver, before)
    _wait(driver, lambda: not driver.execute_script("return document.body.dataset.busy"))


# ------------------------------------------------------------------ the tests


def test_a_slider_changes_the_face_and_moves_its_read_out(browser):
    from selenium.webdriver.common.by import By

    _draw(browser, YOUNG_SEED)
    image, age = _src(browser, "face-img"), _readout(browser, "age")
    assert image.startswith("data:image/png") and _readout(browser, "identity_cosine") > 0.999
    _drag(browser, "slider-regression_age", 12)  # 12 steps of 0.05
    value = browser.find_element(By.ID, "value-regression_age").text
    assert value == "0.60", value
    assert _src(browser, "face-img") != image
    assert _readout(browser, "age") > age + 0.3
    assert _readout(browser, "identity_cosine") < 0.999
    refused = browser.find_element(By.ID, "refused").get_attribute("textContent")
    assert "learned on 'world64-v1'" in refused
    assert browser.find_element(By.ID, "refused-count").text == "1"
    assert re.match(r"update: \d+ ms", browser.find_element(By.ID, "latency").text)
    _shot(browser, "slider")
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    here = browser.current_url.rstrip("/")
    assert fetched and all(u.startswith((here, "data:", "blob:")) for u in fetched), fetched
    timings = browser.execute_script("return window.ganeditTimings")
    (ARTIFACTS / "update_ms.json").write_text(json.dumps(timings))  # recorded, not asserted


def test_two_methods_side_by_side(browser):
    from selenium.webdriver.common.by import By

    _draw(browser, YOUNG_SEED)
    before = _renders(browser)
    browser.find_element(By.ID, "compare-on").click()
    _settled(browser, before)
    assert browser.find_element(By.ID, "compare-a").get_attribute("value") == "regression_age"
    assert browser.find_element(By.ID, "compare-b").get_attribute("value") == "interfacegan_age"
    start = _readout(browser, "age", "compare-a-readout")
    _drag(browser, "compare-strength", 12)
    for side in ("a", "b"):
        assert _src(browser, f"compare-{side}-img").startswith("data:image/png")
        assert _readout(browser, "age", f"compare-{side}-readout") > start
        assert _readout(browser, "identity_cosine", f"compare-{side}-readout") < 0.999
    _shot(browser, "side_by_side")


def test_an_uploaded_world_render_is_reconstructed_and_tuned(browser, tmp_path):
    from selenium.webdriver.common.by import By

    from ganedit.utils.images import to_uint8
    from ganedit.world.config import load_world_config
    from ganedit.world.factors import sample_factors
    from ganedit.world.render import render

    picture = to_uint8(render(sample_factors(load_world_config("celeba"), 11, 0, 1), 64))[0]
    from PIL import Image

    path = tmp_path / "world_render.png"
    Image.fromarray(picture).save(path)
    face = browser.execute_script("return document.body.dataset.face")
    browser.find_element(By.ID, "upload-file").send_keys(str(path))
    steps = browser.find_element(By.ID, "pti-steps")
    steps.clear()
    steps.send_keys("3")
    browser.find_element(By.ID, "upload").click()
    _wait(browser, lambda: "done" in browser.find_element(By.ID, "progress-text").text,
          timeout=120, what="pivotal tuning")  # fmt: skip
    assert browser.execute_script("return document.body.dataset.face") != face
    assert _error(browser) == ""
    _settled(browser, 0)
    assert _src(browser, "face-img").startswith("data:image/png")
    assert _readout(browser, "identity_cosine") > 0.999  # the reconstruction is the start
    origin = browser.find_element(By.ID, "face-origin").text
    assert "upload: world_render.png" in origin and "pti_steps: 3" in origin, origin
    match = float(re.search(r"identity_cosine_to_upload: ([\d.]+)", origin).group(1))
    assert match > 0.5, origin  # the reconstruction is the uploaded face
    assert browser.find_element(By.ID, "upload-preview").is_displayed()
    _shot(browser, "upload")


def test_a_bad_upload_shows_a_message_not_a_trace(browser, tmp_path):
    from selenium.webdriver.common.by import By

    path = tmp_path / "notes.png"
    path.write_text("these are notes, not a picture")
    browser.find_element(By.ID, "pti-steps").clear()
    browser.find_element(By.ID, "upload-file").send_keys(str(path))
    browser.find_element(By.ID, "upload").click()
    _wait(browser, lambda: _error(browser) != "", what="the error message")
    assert _error(browser).startswith("expected a PNG or JPEG image")
    assert "Traceback" not in browser.page_source
    _shot(browser, "bad_upload")


def test_an_exported_code_loads_in_ganedit_edit(browser, downloads, tmp_path, capsys):
    from selenium.webdriver.common.by import By

    from cli_run import ok

    _draw(browser, YOUNG_SEED)
    _drag(browser, "slider-regression_age", 8)
    for button in ("export-latent", "export-sidecar"):
        browser.find_element(By.ID, button).click()
    names = ("ganedit_latent.npy", "ganedit_latent.json")
    _wait(browser, lambda: all((downloads / n).is_file() for n in names), what="the downloads")
    time.sleep(0.5)  # let chromium finish renaming its partial files
    code = np.load(downloads / names[0])
    assert code.shape == (1, 10, 128)
    out = tmp_path / "edit"
    ok(capsys, ["edit", "--latents", downloads / names[0], "--space", "ws", "-g", "world64",
                "-b", AGE[0], "-n", 1, "--steps", 3, "-o", out, "--no-progress"])  # fmt: skip
    assert (out / "strip.png").is_file()
    _shot(browser, "export")


def test_mode_sliders_of_a_self_conditioned_generator(browser):
    """Switching to world64-sc gives one slider per mode; moving the smile mode to t = 1
    makes the face smile (the evaluator's read-out) and leaves the identity close."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    before = _renders(browser)
    Select(browser.find_element(By.ID, "generator-select")).select_by_value("world64-sc")
    _wait(browser, lambda: browser.execute_script("return document.body.dataset.generator")
          == "world64-sc", what="world64-sc")  # fmt: skip
    _settled(browser, before)
    for attr in ("smile", "glasses", "age", "yaw"):
        assert browser.find_element(By.ID, f"slider-mode-{attr}").is_displayed()
    _draw(browser, YOUNG_SEED)
    smile = _readout(browser, "smile")
    _drag(browser, "slider-mode-smile", 60)  # steps of 0.01 from the middle: to t = 1
    assert browser.find_element(By.ID, "value-mode-smile").text == "1.00"
    assert _readout(browser, "smile") > max(0.5, smile + 0.3)
    assert _readout(browser, "identity_cosine") > 0.5
    _shot(browser, "modes")
