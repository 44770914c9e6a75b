"""The directions ganedit ships for dcgan-digiface (ganedit/data/directions): their provenance,
that the editing service offers them for that generator by default, and refuses them for
world64."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from ganedit.directions.io import load_boundary
from ganedit.directions.provenance import check_boundary_use
from ganedit.directions.shipped import shipped_directions, shipped_root
from ganedit.editing.service import EditingService, ServiceConfig
from ganedit.errors import ProvenanceError

DIGIFACE = "dcgan-digiface"
EXPECTED = {
    "yaw": {"interfacegan", "regression"},  # yaw is a value: the labelling methods refuse it
    "smile_proxy": {"interfacegan", "mab", "stratified", "regression", "fisher"},
}
needs_digiface = pytest.mark.skipif(
    importlib.util.find_spec("gan_face_generate") is None,
    reason="needs the optional package gan-face-generate (dcgan-digiface's weights)",
)


def test_the_shipped_files_record_generator_space_attribute_and_method():
    files = shipped_directions(DIGIFACE)
    found: dict[str, set] = {}
    for path in files:
        vector, meta = load_boundary(path)
        assert vector.shape == (100,) and vector.dtype == np.float32
        assert abs(float(np.linalg.norm(vector)) - 1) < 1e-5
        assert meta["generator"] == DIGIFACE and meta["space"] == "z"
        assert len(meta["generator_sha256"]) == 64
        assert path.stem == f"{meta['attribute']}_{meta['method']}"
        found.setdefault(meta["attribute"], set()).add(meta["method"])
    assert found == EXPECTED
    # One generator's weights for all of them.
    shas = {json.loads(p.with_suffix(".npy.json").read_text())["generator_sha256"] for p in files}
    assert len(shas) == 1


def test_only_a_registered_name_finds_shipped_directions(tmp_path):
    assert shipped_directions("world64") == []  # world64 ships none: its defaults are unchanged
    assert shipped_directions(str(shipped_root() / DIGIFACE)) == []  # a path is not a name
    assert shipped_directions("../directions/dcgan-digiface") == []
    assert shipped_directions("no-such-generator") == []


def test_the_shipped_directions_are_refused_for_world64():
    from ganedit.models.sources import generator_identity

    world = generator_identity("world64")
    for path in shipped_directions(DIGIFACE):
        _, meta = load_boundary(path)
        with pytest.raises(ProvenanceError, match="dcgan-digiface"):
            check_boundary_use(meta, world, "z", f"boundary {path}")
    files = tuple(str(p) for p in shipped_directions(DIGIFACE))
    usable, refused = EditingService(ServiceConfig(boundaries=files)).directions("world64")
    assert usable == [] and len(refused) == len(files)
    assert all("learned on 'dcgan-digiface'" in r.reason for r in refused)


def test_world64_is_offered_nothing_by_default():
    usable, refused = EditingService(ServiceConfig()).directions("world64")
    assert usable == [] and refused == []


@needs_digiface
def test_the_service_offers_them_for_dcgan_digiface_by_default():
    from ganedit.models.sources import generator_identity

    sha = generator_identity(DIGIFACE)["sha256"]
    for path in shipped_directions(DIGIFACE):
        assert load_boundary(path)[1]["generator_sha256"] == sha  # the installed weights
    usable, refused = EditingService(ServiceConfig()).directions(DIGIFACE)
    assert refused == []
    assert sorted(d.id for d in usable) == sorted(p.stem for p in shipped_directions(DIGIFACE))
    assert {d.space for d in usable} == {"z"}


@needs_digiface
def test_given_boundaries_replace_the_shipped_ones(tmp_path):
    yaw = shipped_directions(DIGIFACE)[-1]
    service = EditingService(ServiceConfig(boundaries=(str(yaw),)))
    usable, _ = service.directions(DIGIFACE)
    assert [d.id for d in usable] == [yaw.stem]
    off = EditingService(ServiceConfig(shipped=False))
    assert off.directions(DIGIFACE) == ([], [])
