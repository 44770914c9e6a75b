"""The editor offers dcgan-digiface's shipped directions (ganedit/data/directions) when no
boundaries are given, renders with them, and still offers world64 none by default."""

from __future__ import annotations

import importlib.util

import pytest

from cli_run import ok
from ganedit.directions.shipped import shipped_directions

pytest.importorskip("fastapi", reason="the server tests need the ui extra")
if not any(importlib.util.find_spec(m) for m in ("httpx2", "httpx")):
    pytest.skip("the server tests need the ui-test extra (httpx2)", allow_module_level=True)
if importlib.util.find_spec("gan_face_generate") is None:
    pytest.skip("needs the optional package gan-face-generate", allow_module_level=True)

from fastapi.testclient import TestClient  # noqa: E402

from ganedit.editing.service import EditingService, ServiceConfig  # noqa: E402
from ganedit.ui.server import UIConfig, create_app  # noqa: E402

DIGIFACE = "dcgan-digiface"


@pytest.fixture(scope="module")
def client():
    service = EditingService(ServiceConfig())
    app = create_app(service, UIConfig(generator=DIGIFACE))
    with TestClient(app, base_url="http://127.0.0.1:7860", raise_server_exceptions=False) as c:
        yield c


def test_the_editor_offers_the_shipped_directions_for_dcgan_digiface(client):
    g = client.post("/api/generator", json={"generator": DIGIFACE}).json()
    ids = sorted(d["id"] for d in g["directions"])
    assert ids == sorted(p.stem for p in shipped_directions(DIGIFACE)) and g["refused"] == []
    assert g["space"] == "z" and {d["generator"] for d in g["directions"]} == {DIGIFACE}
    yaw = next(d for d in g["directions"] if d["id"] == "yaw_regression")
    assert yaw["attribute"] == "yaw" and yaw["method"] == "regression"
    world = client.post("/api/generator", json={"generator": "world64"}).json()
    assert world["directions"] == [] and world["refused"] == []  # world64's default: none


def test_a_shipped_direction_moves_the_face(client):
    r = client.post("/api/face", json={"generator": DIGIFACE, "seed": 7})
    assert r.status_code == 200, r.text
    face = r.json()["face"]
    base = client.post("/api/render", json={"face": face}).json()["image"]
    moved = client.post(
        "/api/render", json={"face": face, "state": {"strengths": {"yaw_regression": 3.0}}}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["image"] != base


def test_ui_dry_run_counts_the_shipped_directions(capsys):
    out = ok(capsys, ["ui", "-g", DIGIFACE, "--identity", "none", "--dry-run"])
    n = len(shipped_directions(DIGIFACE))
    assert f"{n} direction(s) usable, 0 refused" in out
