"""The web editor's API (fastapi's TestClient), its start-up and Ctrl-C, and the `ui` command's
one-line errors."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_run import ok, user_error
from ui_serving import wait_until_serving

pytest.importorskip("fastapi", reason="the server tests need the ui extra")
if not any(importlib.util.find_spec(m) for m in ("httpx2", "httpx")):
    pytest.skip("the server tests need the ui-test extra (httpx2)", allow_module_level=True)

from fastapi.testclient import TestClient  # noqa: E402

from ganedit.editing.service import EditingService, ServiceConfig  # noqa: E402
from ganedit.ui.server import (  # noqa: E402
    UIConfig,
    bind,
    create_app,
    is_loopback,
    megabytes,
    start_lines,
)

ROOT = Path(__file__).resolve().parents[2]
BOUNDARIES = ROOT / "docs" / "directions_report" / "boundaries"
AGE = [str(BOUNDARIES / "regression_age.npy"), str(BOUNDARIES / "interfacegan_age.npy")]


@pytest.fixture(scope="module")
def client():
    service = EditingService(ServiceConfig(boundaries=tuple(AGE)))
    app = create_app(service, UIConfig(boundaries=tuple(AGE), max_upload_mb=0.05))
    with TestClient(app, base_url="http://127.0.0.1:7860", raise_server_exceptions=False) as c:
        yield c


def world_png(seed: int = 3, size: int = 64) -> bytes:
    from ganedit.utils.images import to_uint8
    from ganedit.world.config import load_world_config
    from ganedit.world.factors import sample_factors
    from ganedit.world.render import render

    image = to_uint8(render(sample_factors(load_world_config("celeba"), seed, 0, 1), size))[0]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="png")
    return buffer.getvalue()


def _png(image: Image.Image, fmt: str = "png") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _face(client, seed=3) -> str:
    r = client.post("/api/face", json={"generator": "world64", "seed": seed})
    assert r.status_code == 200, r.text
    return r.json()["face"]


def test_the_page_and_its_assets_come_from_this_server_only(client):
    page = client.get("/")
    assert page.status_code == 200 and "ganedit editor" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for ref in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        assert ref.startswith("/static/") or ref.startswith("data:"), ref
        if ref.startswith("/static/"):
            assert client.get(ref).status_code == 200
    script = client.get("/static/app.js").text
    assert "http://" not in script and "https://" not in script


def test_requests_for_another_host_name_are_refused(client):
    assert client.get("/api/info", headers={"host": "localhost:7860"}).status_code == 200
    assert client.get("/api/info", headers={"host": "[::1]:7860"}).status_code == 200
    evil = client.get("/api/info", headers={"host": "rebound.example:7860"})
    assert evil.status_code == 400 and "rebound.example" in evil.json()["error"]


def test_generator_lists_usable_and_refused_directions(client):
    info = client.get("/api/info").json()
    assert "world64" in info["generators"] and info["generator"] == "world64"
    g = client.post("/api/generator", json={"generator": "world64"}).json()
    assert [d["id"] for d in g["directions"]] == ["regression_age", "interfacegan_age"]
    assert g["num_ws"] == 10 and g["space"] == "ws" and g["refused"] == []
    # The page lays the read-out out from these: the evaluator's kinds, then the identity.
    assert g["readout"] == {"smile": "probability", "gender": "probability",
                            "glasses": "probability", "age": "probability", "yaw": "value",
                            "identity_cosine": "cosine"}  # fmt: skip
    sc = client.post("/api/generator", json={"generator": "world64-sc"}).json()
    assert sc["directions"] == [] and len(sc["refused"]) == 2
    assert "learned on 'world64'" in sc["refused"][0]["reason"]
    assert sc["modes"] == ["smile", "glasses", "age", "yaw"]
    refused = client.post("/api/boundary", json={"generator": "world64-sc", "path": AGE[0]})
    assert refused.status_code == 400 and "learned on 'world64'" in refused.json()["error"]


def test_render_moves_the_read_out_and_compares_two_methods(client):
    face = _face(client)
    base = client.post("/api/render", json={"face": face}).json()
    assert base["image"].startswith("data:image/png;base64,")
    assert base["readout"]["identity_cosine"] == pytest.approx(1.0, abs=1e-4)
    body = {
        "face": face,
        "state": {"strengths": {"regression_age": 0.6}, "layers": [0, 10]},
        "compare": {"a": "regression_age", "b": "interfacegan_age", "strength": 0.6},
    }
    moved = client.post("/api/render", json=body).json()
    assert moved["readout"]["age"] > base["readout"]["age"] + 0.3
    assert moved["image"] != base["image"] and len(moved["compare"]) == 2
    assert moved["compare"][0]["image"] == moved["image"]  # A at the same strength, alone
    assert all(c["readout"]["identity_cosine"] < 1 for c in moved["compare"])


@pytest.mark.parametrize(
    "body, needle",
    [
        ({"face": "nope"}, "expected a face"),
        ({"state": {}}, "expected face"),
        ({"face": "F", "state": {"strengths": {"regression_age": "x"}}}, "strengths"),
        ({"face": "F", "state": {"strengths": {"regression_age": 1e9}}}, "strength"),
        ({"face": "F", "state": {"layers": [5, 2]}}, "layer range"),
        ({"face": "F", "state": {"units": "px"}}, "units"),
        ({"face": "F", "state": {"modes": {"yaw": 1.0}}}, "self-conditioned"),
        ({"face": "F", "compare": {"a": "regression_age", "b": "ghost", "strength": 1}}, "ghost"),
    ],
)
def test_mistakes_answer_one_line_never_a_traceback(client, body, needle):
    face = _face(client)
    body = json.loads(json.dumps(body).replace('"F"', f'"{face}"'))
    r = client.post("/api/render", json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert needle in error and "\n" not in error and "Traceback" not in r.text


def test_bad_uploads_get_a_message(client):
    cases = {
        "not an image": (b"hello, not an image", "not one or is damaged"),
        "gif": (_png(Image.new("RGB", (64, 64)), "gif"), "received GIF"),
        "16-bit": (_png(Image.new("I;16", (64, 64))), "pixel mode"),
        "tiny": (_png(Image.new("RGB", (4, 4))), "from 8 px"),
        "large": (os.urandom(60_000), "at most 0.05 MB, received 0.06 MB"),  # limit 0.05 MB
        "empty": (b"", "empty file"),
        "truncated": (world_png()[:200], "damaged"),
    }
    for name, (data, needle) in cases.items():
        files = {"file": (f"{name}.png", data, "image/png")}
        r = client.post("/api/upload", data={"generator": "world64"}, files=files)
        assert r.status_code == 400, (name, r.text)
        assert needle in r.json()["error"], (name, r.json())
        assert "Traceback" not in r.text
    files = {"file": ("x.png", world_png(), "image/png")}
    r = client.post("/api/upload", data={"generator": "dcgan-digiface"}, files=files)
    assert r.status_code == 400 and "z only" in r.json()["error"]


def _claimed_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a tiny body: what a decompression
    bomb looks like before it is decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\0" * 4096)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def _claimed_jpeg(width: int, height: int) -> bytes:
    """A real 16x16 JPEG whose frame header (SOF0) is rewritten to claim width x height."""
    data = bytearray(_png(Image.new("RGB", (16, 16)), "jpeg"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize(
    "name, data",
    [
        ("png 20000x20000", _claimed_png(20000, 20000)),  # PIL's own limit raises on this
        ("png 10000x10000", _claimed_png(10000, 10000)),  # PIL only warns on this
        ("jpeg 20000x20000", _claimed_jpeg(20000, 20000)),
    ],
)
def test_oversized_images_are_refused_from_their_header(client, name, data, recwarn):
    size = name.split()[1]
    files = {"file": ("bomb.png", data, "image/png")}
    r = client.post("/api/upload", data={"generator": "world64"}, files=files)
    assert r.status_code == 400, (name, r.text)
    assert r.json()["error"] == (
        f"expected an image from 8 px wide to 40 megapixels, received {size}"
    )
    assert not [w for w in recwarn if "DecompressionBomb" in type(w.message).__name__]


def test_an_upload_over_the_limit_is_reported_with_its_real_size(client):
    """The limit here is 0.05 MB; a file a little over it is read and measured exactly, one
    far over it is refused from the request's length before it is read."""
    for data, status, needle in [
        (os.urandom(60_000), 400, "expected an image of at most 0.05 MB, received 0.06 MB"),
        (os.urandom(115_000), 413, "expected an image of at most 0.05 MB, received a request of 0.115 MB"),
    ]:  # fmt: skip
        files = {"file": ("big.png", data, "image/png")}
        r = client.post("/api/upload", data={"generator": "world64"}, files=files)
        assert (r.status_code, r.json()["error"]) == (status, needle)
    assert megabytes(11_500_000, 10_000_000) == "11.5 MB"
    assert megabytes(10_000_001, 10_000_000) == "10.000001 MB"  # never "received 10 MB"
    assert megabytes(10_000_000) == "10 MB"


def test_grey_palette_and_jpeg_uploads_are_accepted(client):
    picture = Image.open(io.BytesIO(world_png(seed=6, size=128)))
    for name, data in {
        "grey.png": _png(picture.convert("L")),
        "palette.png": _png(picture.convert("P")),
        "photo.jpg": _png(picture.crop((0, 20, 128, 100)), "jpeg"),  # not square: centre crop
    }.items():
        files = {"file": (name, data, "image/png")}
        r = client.post("/api/upload", data={"generator": "world64"}, files=files)
        assert r.status_code == 200, (name, r.text)
        assert r.json()["origin"]["upload"] == name


def test_an_upload_with_align_inverts_the_photos_aligned_face(client):
    pytest.importorskip("dlib", reason="needs the ganedit[faces] extra")
    data = pytest.importorskip("skimage.data", reason="needs ganedit[faces-test]")
    from ganedit.inversion.align import align_photo
    from ganedit.utils.images import from_uint8

    photo = Image.fromarray(data.astronaut()).resize((256, 256), Image.Resampling.LANCZOS)
    jpeg = _png(photo, "jpeg")  # under the 0.05 MB limit
    files = {"file": ("astronaut.jpg", jpeg, "image/jpeg")}
    r = client.post("/api/upload", data={"generator": "world64", "align": "true"}, files=files)
    assert r.status_code == 200, r.text
    assert r.json()["origin"]["aligned"] == "ffhq"
    decoded = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
    target = client.app.state.inverter.service.face(r.json()["face"]).target
    expected = from_uint8(align_photo(decoded, 64)[0].image[None])[0]
    assert torch_equal(target, expected)  # the same crop `ganedit align` makes
    files = {"file": ("plain.png", world_png(), "image/png")}  # a cartoon: no face for dlib
    r = client.post("/api/upload", data={"generator": "world64", "align": "true"}, files=files)
    assert r.status_code == 400 and r.json()["error"].startswith("expected a face in plain.png")
    r = client.post("/api/upload", data={"generator": "world64", "align": "maybe"}, files=files)
    assert r.status_code == 400 and "\n" not in r.json()["error"]


def torch_equal(a, b) -> bool:
    return bool((a.cpu() == b.cpu()).all())


def test_upload_inverts_then_pivotal_tuning_reports_progress(client):
    rgba = Image.open(io.BytesIO(world_png(seed=5, size=128))).convert("RGBA")
    files = {"file": ("world.png", _png(rgba), "image/png")}  # resized, alpha dropped
    r = client.post("/api/upload", data={"generator": "world64"}, files=files)
    assert r.status_code == 200, r.text
    face = r.json()["face"]
    recon = client.post("/api/render", json={"face": face}).json()
    assert recon["readout"]["identity_cosine"] == pytest.approx(1.0, abs=1e-4)
    job = client.post("/api/tune", json={"face": face, "steps": 3}).json()
    for _ in range(600):
        if job["state"] != "running":
            break
        time.sleep(0.1)
        job = client.get(f"/api/job/{job['job']}").json()
    assert job["state"] == "done" and job["done"] == 3, job
    tuned = client.post("/api/render", json={"face": job["face"]}).json()
    assert tuned["image"] != recon["image"]
    drawn = _face(client)
    assert client.post("/api/tune", json={"face": drawn, "steps": 3}).status_code == 400


def test_exports_download_what_edit_reads(client, tmp_path, capsys):
    from cli_run import ok

    face = _face(client)
    state = {"strengths": {"regression_age": 0.5}}
    code = client.post("/api/export/latent", json={"face": face, "state": state})
    side = client.post("/api/export/sidecar", json={"face": face, "state": state})
    assert "attachment" in code.headers["content-disposition"]
    (tmp_path / "code.npy").write_bytes(code.content)
    (tmp_path / "code.json").write_bytes(side.content)
    assert np.load(tmp_path / "code.npy").shape == (1, 10, 128)
    ok(capsys, ["edit", "--latents", tmp_path / "code.npy", "--space", "ws", "-g", "world64",
                "-b", AGE[0], "-n", 1, "--steps", 2, "-o", tmp_path / "e", "--no-progress"])  # fmt: skip
    image = client.post("/api/export/image", json={"face": face, "state": state})
    assert Image.open(io.BytesIO(image.content)).size == (64, 64)
    sweep = {"face": face, "state": state, "slider": "regression_age", "start": -1, "end": 1}
    gif = client.post("/api/export/sweep", json={**sweep, "steps": 3, "format": "gif"})
    assert Image.open(io.BytesIO(gif.content)).n_frames == 4
    bad = client.post("/api/export/sweep", json={**sweep, "steps": 1000, "format": "gif"})
    assert bad.status_code == 400 and "steps" in bad.json()["error"]


def _chunks(data: bytes):
    yield data  # a body of unknown length: sent chunked, without Content-Length


BAD_REQUESTS = [
    # (method, path, request keywords, status, what the line says)
    ("post", "/api/generator", {"json": {"generator": "x" * 100_000}}, 400, "at most 4096 characters"),
    ("post", "/api/generator", {"json": {"generator": "g" * 2_000_000}}, 413, "at most 1 MB, received 2 MB"),
    ("post", "/api/generator", {"json": {"generator": "a/" + "n" * 300}}, 400, "at most 255 bytes, received a name of 300"),
    ("post", "/api/generator", {"json": {"generator": "a\x00b"}}, 400, "without NUL bytes"),
    ("post", "/api/generator", {"json": ["world64"]}, 400, "a JSON object as the request body, received list"),
    ("post", "/api/generator", {"content": b"{nope", "headers": {"content-type": "application/json"}}, 400, "text that is not JSON"),
    ("post", "/api/generator", {"content": _chunks(b'{"generator": "world64"}'), "headers": {"content-type": "application/json"}}, 411, "Content-Length"),
    ("post", "/api/boundary", {"json": {"generator": "world64", "path": "p" * 5000}}, 400, "at most 4096 characters"),
    ("post", "/api/face", {"json": {"generator": "world64", "bank": "b/" + "b" * 256, "row": 0}}, 400, "at most 255 bytes"),
    ("post", "/api/face", {"json": {"generator": "world64", "seed": "3"}}, 400, "expected seed as an integer, received '3'"),
    ("post", "/api/upload", {"data": {"generator": "world64"}}, 400, "expected the field 'file' in the request, received none"),
    ("post", "/api/upload", {"data": {"generator": "w" * 5000}, "files": {"file": ("a.png", b"x", "image/png")}}, 400, "at most 4096 characters"),
    ("get", "/api/job/" + "j" * 5000, {}, 400, "expected job of at most 64 characters"),
    ("post", "/api/calibrate", {"json": {"generator": "world64", "directions": "regression_age"}}, 400, "directions as a list of direction ids"),
    ("post", "/api/calibrate", {"json": {"generator": "world64", "directions": ["ghost"]}}, 400, "received 'ghost'"),
    ("post", "/api/render", {"json": {"face": "F", "compare": [1]}}, 400, "compare as an object {a, b, strength}, received [1]"),
    ("post", "/api/render", {"json": {"face": "F", "start": "yes"}}, 400, "start as true or false"),
    ("post", "/api/render", {"json": {"face": "F", "state": {"strengths": {f"d{i}": 0 for i in range(300)}}}}, 400, "at most 256 strengths"),
    ("post", "/api/render", {"json": {"state": {}}}, 400, "expected face in the request, received none"),
    ("post", "/api/render", {"json": {"face": ""}}, 400, "expected face as a non-empty text, received ''"),
    ("post", "/api/render", {"json": {"face": "F", "state": [1]}}, 400, "expected state as an object, received [1]"),
    ("post", "/api/render", {"json": {"face": "F", "state": {"layers": [1, 2, 3]}}}, 400, "expected layers as [start, stop], received [1, 2, 3]"),
    ("post", "/api/render", {"json": {"face": "F", "state": {"units": 3}}}, 400, "expected units as latent or calibrated, received 3"),
    ("post", "/api/render", {"json": {"face": "F", "state": {"strengths": {"a": True}}}}, 400, "expected strengths as {name: number}, received True"),
    ("post", "/api/render", {"json": {"face": "F", "compare": {"a": "x", "b": "y", "strength": "x"}}}, 400, "expected strength as a number, received 'x'"),
    ("post", "/api/calibrate", {"json": {"generator": "world64", "directions": ["a"] * 300}}, 400, "expected at most 256 direction ids, received 300"),
    ("post", "/api/face", {"json": {"generator": "world64", "seed": True}}, 400, "expected seed as an integer, received True"),
    ("post", "/api/face", {"json": {"generator": "world64", "bank": "b.npz"}}, 400, "expected row as an integer, received None"),
    ("post", "/api/tune", {"json": {"face": "F", "steps": 1.5}}, 400, "expected steps as an integer, received 1.5"),
    ("post", "/api/export/sweep", {"json": {"face": "F", "slider": "a", "start": 0, "end": 1, "steps": 2, "format": "bmp"}}, 400, "expected a sweep format gif or png, received 'bmp'"),
    ("post", "/api/render", {"content": b"[" * 200_000, "headers": {"content-type": "application/json"}}, 400, "could not read"),
    ("post", "/api/export/sweep", {"json": {"face": "F", "slider": "s" * 5000, "start": 0, "end": 1, "steps": 2, "format": "gif"}}, 400, "at most 4096 characters"),
    ("get", "/api/nope", {}, 404, "expected a path of the editor's page or API, received GET '/api/nope'"),
    ("get", "/api/render", {}, 405, "received GET '/api/render'"),
]  # fmt: skip


@pytest.mark.parametrize("method, path, kwargs, status, needle", BAD_REQUESTS)
def test_every_bad_request_answers_4xx_and_one_line(client, method, path, kwargs, status, needle):
    if "json" in kwargs:
        face = _face(client)
        kwargs = {
            **kwargs,
            "json": json.loads(json.dumps(kwargs["json"]).replace('"F"', f'"{face}"')),
        }
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    assert list(r.json()) == ["error"], r.text
    error = r.json()["error"]
    assert needle in error and "\n" not in error and len(error) <= 600, error
    assert "content-security-policy" in r.headers


def test_a_pickled_boundary_is_refused_without_advice_to_load_it(client, tmp_path):
    path = tmp_path / "pickled.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    r = client.post("/api/boundary", json={"generator": "world64", "path": str(path)})
    assert r.status_code == 400
    error = r.json()["error"]
    assert "an array of pickled Python objects (not loaded" in error
    assert not any(w in error for w in ("unsafe", "allow_pickle", "pickle.load"))


def _pixels(data_url: str) -> np.ndarray:
    import base64

    png = base64.b64decode(data_url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)), np.int16)


def test_render_returns_the_start_image_when_asked(client):
    face = _face(client)
    state = {"strengths": {"regression_age": 0.8}}
    plain = client.post("/api/render", json={"face": face}).json()
    both = client.post("/api/render", json={"face": face, "state": state, "start": True}).json()
    start, alone, edited = (_pixels(x["image"]) for x in (both["start"], plain, both))
    assert np.abs(start - alone).max() <= 2  # the same face (batches round differently)
    assert np.abs(edited - alone).max() > 20
    assert both["start"]["readout"]["identity_cosine"] == pytest.approx(1.0, abs=1e-4)
    assert "start" not in client.post("/api/render", json={"face": face}).json()


def test_calibrated_units(client):
    face = _face(client)
    one = {"strengths": {"regression_age": 1.0}, "units": "calibrated"}
    a = client.post("/api/render", json={"face": face, "state": one}).json()  # calibrates
    cal = client.post(
        "/api/calibrate", json={"generator": "world64", "directions": ["regression_age"]}
    ).json()
    per_unit = cal["regression_age"]["latent_per_unit"]
    assert list(cal) == ["regression_age"] and 0 < per_unit < 1  # ~2.7 logits per latent unit
    every = client.post("/api/calibrate", json={"generator": "world64"}).json()
    assert list(every) == ["regression_age", "interfacegan_age"]  # no field: every direction
    latent = {"strengths": {"regression_age": per_unit}}
    b = client.post("/api/render", json={"face": face, "state": latent}).json()
    assert a["readout"]["age"] == pytest.approx(b["readout"]["age"], abs=1e-4)


def test_internal_errors_stay_in_the_log(client, monkeypatch):
    service = client.app.state.service

    def broken(*args, **kwargs):
        raise RuntimeError("a bug\nwith lines")

    monkeypatch.setattr(service, "render", broken)
    r = client.post("/api/render", json={"face": "f1"})
    assert r.status_code == 500 and "a bug" not in r.text and "internal error" in r.json()["error"]


# ------------------------------------------------------------------ the server and the command


def test_loopback_only_unless_asked_and_a_taken_port_is_one_line(capsys):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert "loopback, this machine alone" in start_lines("127.0.0.1", 7860)[1]
    wide = start_lines("0.0.0.0", 7860)
    assert wide[0] == "ganedit ui: http://0.0.0.0:7860/ (Ctrl-C stops)"
    assert "other machines can connect; there is no authentication" in wide[1]
    assert start_lines("::1", 80)[0] == "ganedit ui: http://[::1]:80/ (Ctrl-C stops)"
    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        from ganedit.errors import UserInputError

        with pytest.raises(UserInputError, match="free port"):
            bind("127.0.0.1", port)
        line = user_error(capsys, ["ui", "--port", port])  # before any model loads
        assert f"received {port} (Address already in use)" in line
    finally:
        sock.close()


def test_ctrl_c_stops_the_server_and_the_command_returns_0(capsys):
    """In-process: the command serves in this (main) thread until SIGINT arrives."""
    import threading

    from ganedit.cli import run

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def interrupt():
        wait_until_serving(port)  # uvicorn's handler is in place before it answers
        os.kill(os.getpid(), signal.SIGINT)

    helper = threading.Thread(target=interrupt, daemon=True)
    helper.start()
    code = run(["ui", "--port", str(port), "-b", AGE[0]])
    helper.join(timeout=60)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"ganedit ui: http://127.0.0.1:{port}/" in out
    assert "loopback, this machine alone can connect (--host to listen elsewhere)" in out
    assert out.rstrip().endswith("ganedit ui: stopped") and "Traceback" not in err


@pytest.mark.slow  # the same in a real process; the browser tests' server checks it too
def test_ctrl_c_stops_the_server_cleanly(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ganedit", "ui", "--port", "0", "-b", AGE[0]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("listening on"):
                break
        text = "".join(lines)
        assert "listening on 127.0.0.1 only: loopback" in text, text + proc.stderr.read()
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", text).group(1))
        wait_until_serving(port)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "stopped" in out


def test_ui_command_user_errors(capsys, monkeypatch, tmp_path):
    assert "received 'example.com'" in user_error(capsys, ["ui", "--host", "example.com"])
    assert "--port" in user_error(capsys, ["ui", "--port", "70000"])
    assert "boundary" in user_error(capsys, ["ui", "-b", tmp_path / "none.npy", "--dry-run"])
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a)
    )
    line = user_error(capsys, ["ui", "-b", AGE[0]])
    assert "pip install 'ganedit[ui]'" in line


def test_the_readme_screenshot_is_of_the_readme_command(capsys, monkeypatch):
    """scripts/make_ui_screenshot.py runs README's `ganedit ui` line and records it in the
    PNG: the screenshot is of that command (regenerate it when the line changes), which
    docs/ui.md repeats and which runs as written."""
    import importlib.util
    import shlex

    spec = importlib.util.spec_from_file_location(
        "shot", ROOT / "scripts" / "make_ui_screenshot.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    command = script.readme_command()
    assert command[:2] == ["ganedit", "ui"]
    with Image.open(ROOT / "docs" / "ui_screenshot.png") as shot:
        assert shot.text[script.COMMAND_KEY] == shlex.join(command)
    assert script.readme_command(ROOT / "docs" / "ui.md") == command
    monkeypatch.chdir(ROOT)
    out = ok(capsys, [*command[1:], "--dry-run"])
    assert "world64: 24 direction(s) usable, 0 refused, 0 mode slider(s)" in out


def test_a_direction_of_the_wrong_shape_is_listed_as_refused(capsys, tmp_path):
    """A well-formed direction that fits no layer of the generator (another generator's, or
    a cut one) gets no slider: `ui` starts and names it with `edit`'s reason, since the page
    may switch to a generator it fits."""
    from ganedit.directions.io import load_boundary, save_boundary

    vector, sidecar = load_boundary(AGE[0])
    save_boundary(tmp_path / "cut.npy", vector[..., :64], {**sidecar, "shape": [1, 64]})
    out = ok(capsys, ["ui", "-b", tmp_path / "cut.npy", "-b", AGE[1], "--dry-run"])
    assert "world64: 1 direction(s) usable, 1 refused" in out
    assert "refused: expected a direction of shape [128]" in out and ", 64)" in out
