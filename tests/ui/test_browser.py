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
SC_SEED = 2  # a world64-sc face drawn at the data's modes without a smile (smile t near 0)


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
        _until(driver, lambda: _js(driver, "return document.body.dataset.ready") == "1",
               "the page's start")  # fmt: skip
        _idle(driver, 0)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# ------------------------------------------------------------------ helpers
#
# Nothing here sleeps: every step waits, with WebDriverWait, on a condition the page sets
# (its requests in flight, its renders counter, the face its last render showed, an image's
# new source). Values are read in one script call each, and elements are found again for
# every action, so a re-render between two calls cannot leave a stale element behind.

TIMEOUT = 180  # generous: on a loaded machine one render can take seconds


def _until(driver, condition, what: str, timeout: float = TIMEOUT):
    """Wait until `condition()` is truthy (a stale element counts as not yet)."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(
        driver, timeout, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)
    )
    try:
        return wait.until(lambda _: condition())
    except TimeoutException:
        _shot(driver, "timeout")
        raise AssertionError(
            f"{what} did not get there in {timeout} s; errors shown: {_errors(driver)!r}"
        ) from None


def _page(driver) -> dict:
    """The page's state as one read: renders so far, requests in flight, the face shown and
    the face of the last render."""
    return driver.execute_script(
        "const d = document.body.dataset;"
        "return {renders: Number(d.renders || 0), requests: Number(d.requests || 0),"
        " busy: d.busy || '', face: d.face || '', rendered: d.renderedFace || ''};"
    )


def _renders(driver) -> int:
    return _page(driver)["renders"]


def _idle(driver, after: int, what: str = "the render"):
    """Until a render newer than `after` has shown the current face and nothing is in
    flight (no request, no render waiting)."""

    def done():
        page = _page(driver)
        return (
            page["renders"] > after
            and page["requests"] == 0
            and not page["busy"]
            and page["rendered"] == page["face"]
        )

    _until(driver, done, what)


def _js(driver, script: str, *args):
    return driver.execute_script(script, *args)


def _readout(driver, key: str, table: str = "readout") -> float:
    value = _js(
        driver,
        "const c = document.querySelector(`#${arguments[0]} tr[data-key='${arguments[1]}'] "
        "td.value`); return c ? c.dataset.value : null;",
        table,
        key,
    )
    assert value is not None, f"no {key} in #{table}"
    return float(value)


def _src(driver, element_id: str) -> str:
    return _js(driver, "return document.getElementById(arguments[0]).src || '';", element_id)


def _text(driver, element_id: str) -> str:
    return _js(driver, "return document.getElementById(arguments[0]).textContent;", element_id)


def _shown(driver, element_id: str) -> bool:
    """Whether the element takes up space on the page (not hidden, not display: none)."""
    return _js(
        driver,
        "const e = document.getElementById(arguments[0]); return e.getClientRects().length > 0;",
        element_id,
    )


def _errors(driver) -> dict:
    """Every error box on the page that shows something, by id."""
    return _js(
        driver,
        "const out = {}; for (const e of document.querySelectorAll('[role=alert]'))"
        " if (!e.hidden && e.textContent) out[e.id] = e.textContent; return out;",
    )


def _shot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def _act(driver, element_id: str, action):
    """`action(element)` on the element found now, found again if a re-render replaced it."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for _ in range(10):
        try:
            return action(driver.find_element(By.ID, element_id))
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"#{element_id} kept being replaced")


def _type(driver, element_id: str, text: str) -> None:
    _act(driver, element_id, lambda e: e.clear())
    if text:
        _act(driver, element_id, lambda e: e.send_keys(text))


def _draw(driver, seed: int) -> None:
    _idle_now(driver)
    _type(driver, "seed", str(seed))
    old, before = _page(driver)["face"], _renders(driver)
    _act(driver, "draw", lambda e: e.click())
    _until(driver, lambda: _page(driver)["face"] != old, "the new face")
    _idle(driver, before)


def _idle_now(driver) -> None:
    """Until nothing is in flight (whatever came before has settled)."""
    _until(
        driver,
        lambda: _page(driver)["requests"] == 0 and not _page(driver)["busy"],
        "the page to settle",
    )


def _drag(driver, slider_id: str, presses: int) -> None:
    """Move a range input by keyboard: one input event per step, as a drag sends them
    (send_keys focuses the input without clicking it, so its value moves only by the keys)."""
    from selenium.webdriver.common.keys import Keys

    key = Keys.ARROW_RIGHT if presses > 0 else Keys.ARROW_LEFT
    image, before = _src(driver, "face-img"), _renders(driver)
    for _ in range(abs(presses)):
        _act(driver, slider_id, lambda e: e.send_keys(key))
    _idle(driver, before)
    if not slider_id.startswith("compare"):
        _until(driver, lambda: _src(driver, "face-img") != image, "the edited image")


def _size(driver, element_id: str) -> tuple[int, int]:
    rect = _js(
        driver,
        "const r = document.getElementById(arguments[0]).getBoundingClientRect();"
        "return [Math.round(r.width), Math.round(r.height)];",
        element_id,
    )
    return tuple(rect)


# ------------------------------------------------------------------ the tests


def test_a_slider_changes_the_face_and_moves_its_read_out(browser):
    from selenium.webdriver.common.by import By

    _draw(browser, YOUNG_SEED)
    image, age = _src(browser, "face-img"), _readout(browser, "age")
    assert image.startswith("data:image/png") and _readout(browser, "identity_cosine") > 0.999
    assert _src(browser, "start-img").startswith("data:image/png")
    _drag(browser, "slider-regression_age", 12)  # 12 steps of 0.05
    assert _text(browser, "value-regression_age") == "0.60"
    assert _src(browser, "face-img") != image
    assert _readout(browser, "age") > age + 0.3
    assert _readout(browser, "identity_cosine") < 0.999
    refused = _text(browser, "refused")
    assert "learned on 'world64-v1'" in refused
    assert _text(browser, "refused-count") == "1"
    assert re.match(r"update: \d+ ms", _text(browser, "latency"))
    _shot(browser, "slider")
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    here = browser.current_url.rstrip("/")
    assert fetched and all(u.startswith((here, "data:", "blob:")) for u in fetched), fetched
    timings = browser.execute_script("return window.ganeditTimings")
    (ARTIFACTS / "update_ms.json").write_text(json.dumps(timings))  # recorded, not asserted
    assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None


def test_labels_name_method_and_space_whole(browser):
    """Each slider reads `attribute · method · space` from its sidecar, with everything
    else on hover, and no label is cut off."""
    labels = _js(
        browser,
        "return [...document.querySelectorAll('#sliders .name')].map(e => [e.id, e.textContent,"
        " e.title, e.scrollWidth <= e.clientWidth + 1, e.scrollHeight <= e.clientHeight + 1]);",
    )
    assert [(i, t) for i, t, *_ in labels] == [
        ("name-regression_age", "age · regression · w"),
        ("name-interfacegan_age", "age · interfacegan · w"),
    ]
    for element_id, _, title, whole_width, whole_height in labels:
        stem = element_id.removeprefix("name-")
        assert title.startswith(f"{stem}: ") and f"{stem}.npy" in title, title
        assert whole_width and whole_height, element_id


def test_two_methods_side_by_side(browser):
    _draw(browser, YOUNG_SEED)
    before = _renders(browser)
    _act(browser, "compare-on", lambda e: e.click())
    _idle(browser, before)
    _until(browser, lambda: _shown(browser, "compare-a-img"), "the side-by-side images")
    values = [_js(browser, f"return document.getElementById('compare-{k}').value") for k in "ab"]
    assert values == ["regression_age", "interfacegan_age"]  # different methods, one attribute
    assert _text(browser, "compare-a-caption") == "age · regression · w"
    assert _text(browser, "compare-b-caption") == "age · interfacegan · w"
    start = _readout(browser, "age", "compare-a-readout")
    _drag(browser, "compare-strength", 12)
    for side in ("a", "b"):
        assert _src(browser, f"compare-{side}-img").startswith("data:image/png")
        assert _readout(browser, "age", f"compare-{side}-readout") > start
        assert _readout(browser, "identity_cosine", f"compare-{side}-readout") < 0.999
    assert _size(browser, "compare-a-img") == _size(browser, "face-img")
    _shot(browser, "side_by_side")


def test_the_slider_range_is_the_users(browser):
    """Smile needs longer steps than +-3: the range field sets every direction slider's
    reach (and its keyboard step)."""
    _draw(browser, YOUNG_SEED)
    before = _renders(browser)
    _type(browser, "slider-range", "6")
    _act(browser, "slider-range", lambda e: e.send_keys("\t"))  # change fires on leaving it
    _until(browser, lambda: _js(browser, "return document.getElementById('slider-regression_age').max") == "6", "the new range")  # fmt: skip
    _idle(browser, before)
    assert _js(browser, "return document.getElementById('slider-regression_age').step") == "0.1"
    assert _js(browser, "return document.getElementById('compare-strength').max") == "6"
    _drag(browser, "slider-regression_age", 40)  # 40 steps of 0.1: beyond the old +-3
    assert _text(browser, "value-regression_age") == "4.00"
    before = _renders(browser)
    _type(browser, "slider-range", "0")
    _act(browser, "slider-range", lambda e: e.send_keys("\t"))
    _until(browser, lambda: "slider-error" in _errors(browser), "the range's error")
    assert _errors(browser)["slider-error"].startswith("expected a slider range above 0")
    _type(browser, "slider-range", "3")  # back to the default for the tests after this one
    _act(browser, "slider-range", lambda e: e.send_keys("\t"))
    _until(browser, lambda: "slider-error" not in _errors(browser), "the error to clear")
    _idle(browser, before)
    assert _text(browser, "value-regression_age") == "3.00"  # clamped to the range


def test_a_check_error_shows_beside_its_button(browser):
    _type(browser, "boundary-path", "/nonexistent/direction.npy")
    _act(browser, "boundary-check", lambda e: e.click())
    _until(browser, lambda: "boundary-error" in _errors(browser), "the Check error")
    assert _errors(browser) == {
        "boundary-error": "expected an existing boundary .npy file, received "
        "'/nonexistent/direction.npy'"
    }  # beside the button, not in the banner
    _type(browser, "boundary-path", str(AGE[1]))
    _act(browser, "boundary-check", lambda e: e.click())
    _until(browser, lambda: "usable:" in _text(browser, "boundary-result"), "the Check result")
    assert "boundary-error" not in _errors(browser)
    assert _text(browser, "boundary-result").startswith("usable: age · interfacegan · w")


def _world_png(path: Path, seed: int = 11) -> Path:
    from PIL import Image

    from ganedit.utils.images import to_uint8
    from ganedit.world.config import load_world_config
    from ganedit.world.factors import sample_factors
    from ganedit.world.render import render

    picture = to_uint8(render(sample_factors(load_world_config("celeba"), seed, 0, 1), 64))[0]
    Image.fromarray(picture).save(path)
    return path


def _upload(driver, path: Path, pti_steps: int) -> None:
    _idle_now(driver)
    _type(driver, "pti-steps", str(pti_steps))
    _act(driver, "upload-file", lambda e: e.send_keys(str(path)))
    _act(driver, "upload", lambda e: e.click())


def test_an_uploaded_world_render_is_reconstructed_and_tuned(browser, tmp_path):
    path = _world_png(tmp_path / "world_render.png")
    face, before = _page(browser)["face"], _renders(browser)
    _upload(browser, path, 3)
    _until(browser, lambda: _js(browser, "return document.body.dataset.upload") == "done",
           "pivotal tuning")  # fmt: skip
    _idle(browser, before)
    assert _page(browser)["face"] != face
    assert _errors(browser) == {}
    assert _text(browser, "progress-text") == "pivotal tuning: done (3 steps)"
    assert _src(browser, "face-img").startswith("data:image/png")
    assert _readout(browser, "identity_cosine") > 0.999  # the reconstruction is the start
    origin = _text(browser, "face-origin")
    assert "upload: world_render.png" in origin and "pti_steps: 3" in origin, origin
    match = float(re.search(r"identity_cosine_to_upload: ([\d.]+)", origin).group(1))
    assert match > 0.5, origin  # the reconstruction is the uploaded face
    # The upload, its reconstruction and the edit, side by side at one size.
    assert _shown(browser, "upload-preview") and _text(browser, "start-caption") == "reconstruction"
    _until(browser, lambda: _src(browser, "start-img").startswith("data:image/png"), "the start")
    sizes = {_size(browser, i) for i in ("upload-preview", "start-img", "face-img")}
    assert len(sizes) == 1 and next(iter(sizes))[0] >= 96, sizes
    _shot(browser, "upload")


def test_upload_states_end_and_errors_show_beside_the_upload(browser, tmp_path):
    before = _renders(browser)
    _upload(browser, _world_png(tmp_path / "plain.png", seed=12), 0)
    _until(browser, lambda: _js(browser, "return document.body.dataset.upload") == "done",
           "the encoder")  # fmt: skip
    _idle(browser, before)
    assert not _shown(browser, "progress-row")  # "encoding…" is gone
    notes = tmp_path / "notes.png"
    notes.write_text("these are notes, not a picture")
    _upload(browser, notes, 0)
    _until(browser, lambda: "upload-error" in _errors(browser), "the upload's error")
    assert _js(browser, "return document.body.dataset.upload") == "failed"
    assert not _shown(browser, "progress-row")
    assert list(_errors(browser)) == ["upload-error"]  # beside the upload, not in the banner
    assert _errors(browser)["upload-error"].startswith("expected a PNG or JPEG image")
    assert "Traceback" not in browser.page_source
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(11_500_000))
    _upload(browser, big, 0)  # refused in the page, with its real size
    _until(browser, lambda: "11.5 MB" in _errors(browser).get("upload-error", ""), "the size")
    assert _errors(browser)["upload-error"] == (
        "expected an image of at most 10 MB, received 11.5 MB (big.png)"
    )
    _shot(browser, "bad_upload")


def _downloaded(folder: Path, names: tuple[str, ...]) -> bool:
    """Both files complete: chromium's partial files gone, the array and the JSON readable."""
    if any(p.suffix == ".crdownload" for p in folder.iterdir()):
        return False
    try:
        return np.load(folder / names[0]).shape == (1, 10, 128) and bool(
            json.loads((folder / names[1]).read_text())
        )
    except (OSError, ValueError, EOFError):
        return False


def test_an_exported_code_loads_in_ganedit_edit(browser, downloads, tmp_path, capsys):
    from cli_run import ok

    _draw(browser, YOUNG_SEED)
    _drag(browser, "slider-regression_age", 8)
    for button in ("export-latent", "export-sidecar"):
        _act(browser, button, lambda e: e.click())
    names = ("ganedit_latent.npy", "ganedit_latent.json")
    _until(browser, lambda: _downloaded(downloads, names), "the downloads")
    out = tmp_path / "edit"
    ok(capsys, ["edit", "--latents", downloads / names[0], "--space", "ws", "-g", "world64",
                "-b", AGE[0], "-n", 1, "--steps", 3, "-o", out, "--no-progress"])  # fmt: skip
    assert (out / "strip.png").is_file()
    _shot(browser, "export")


def test_mode_sliders_of_a_self_conditioned_generator(browser):
    """Switching to world64-sc gives one slider per mode; moving the smile mode from the
    face's own t (the data's modes it was drawn at) to the other end changes the smile (the
    evaluator's read-out) and leaves the identity close."""
    from selenium.webdriver.support.ui import Select

    _idle_now(browser)
    before = _renders(browser)
    _act(browser, "generator-select", lambda e: Select(e).select_by_value("world64-sc"))
    _until(browser, lambda: _js(browser, "return document.body.dataset.generator")
           == "world64-sc", "world64-sc")  # fmt: skip
    _idle(browser, before)
    for attr in ("smile", "glasses", "age", "yaw"):
        assert _shown(browser, f"slider-mode-{attr}")
    _draw(browser, SC_SEED)
    smile = _readout(browser, "smile")
    own = float(_text(browser, "value-mode-smile"))
    up = own < 0.5  # steps of 0.01 from the face's own t to the other end
    _drag(browser, "slider-mode-smile", 100 if up else -100)
    assert _text(browser, "value-mode-smile") == ("1.00" if up else "0.00")
    moved = _readout(browser, "smile")
    assert moved > max(0.5, smile + 0.3) if up else moved < min(0.5, smile - 0.3)
    assert _readout(browser, "identity_cosine") > 0.5
    _shot(browser, "modes")
