"""Score kinds downstream of the bank: a predictor's `value` attributes are never read as
probabilities, and banks without recorded kinds keep the old rule (yaw a value)."""

import json
import sys
import textwrap

import numpy as np
import pytest
import torch

from cli_run import ok, user_error
from ganedit.directions import (
    MAB,
    ContingencyTable,
    Fisher,
    InterFaceGAN,
    Regression,
    Scores,
    Stratified,
    resolve_attributes,
    sidecar_path,
)
from ganedit.directions.fit import load_scores
from ganedit.directions.sampling import score_kinds
from ganedit.errors import UserInputError
from ganedit.latents import LatentBank
from ganedit.latents.bank import chunk_ranges, create_store, finalize, write_chunk


def _planted(n=400, seed=0):
    """Latents where bald moves along e0 and pose (degrees) along e1."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    bald = 1 / (1 + np.exp(-3 * x[:, 0]))
    pose = 25 * x[:, 1] + 5 * x[:, 0]  # correlated with bald, as yaw with smile in the world
    return x.astype(np.float32), {"bald": bald, "pose": pose}


KINDS = {"bald": "probability", "pose": "value"}


def test_recorded_kinds_decide_and_plain_mappings_keep_the_old_rule():
    _, values = _planted()
    scores = Scores(values, KINDS)
    assert score_kinds(scores) == KINDS
    assert resolve_attributes(scores) == ["bald"]
    # A plain mapping (a bank or score file without kinds): only yaw is a value, so pose
    # counts as a probability, and a probability check of it fails on its range.
    assert score_kinds(values) == {"bald": "probability", "pose": "probability"}
    assert score_kinds({"smile": [0.5], "yaw": [3.0]})["yaw"] == "value"
    # Missing kinds fall back per name; a recorded kind overrides the old rule.
    mixed = Scores({"yaw": [0.2], "pose": [4.0]}, {"yaw": "probability", "pose": None})
    assert mixed.kinds == {"yaw": "probability", "pose": "probability"}
    with pytest.raises(UserInputError, match="expected score kinds"):
        Scores(values, {"bald": "binary"})


def test_estimators_take_value_targets_where_they_can_and_refuse_in_one_line():
    x, values = _planted()
    scores = Scores(values, KINDS)
    ifg = InterFaceGAN("pose", ratio=0.2).fit(x, scores)
    assert ifg.direction_[1] > 0.9
    reg = Regression("pose").fit(x, scores)
    assert reg.attributes_ == ["bald", "pose"] and reg.continuous_ == ["pose"]
    assert reg.direction_[1] > 0.97 and reg.summary()["continuous"] == ["pose"]
    for estimator in (MAB("pose", threshold=None), Stratified("pose"), Fisher("pose")):
        with pytest.raises(UserInputError) as caught:
            estimator.fit(x, scores)
        message = str(caught.value)
        assert "\n" not in message and "'pose' of kind value" in message, message
        assert f"method {estimator.method}" in message
    # pose is left out of the probability methods by default, and refused when named
    assert MAB("bald", n=200, threshold=None).fit(x, scores).attributes_ == ["bald"]
    assert Stratified("bald", threshold=None).fit(x, scores).attributes_ == ["bald"]
    with pytest.raises(UserInputError, match="'pose' of kind value"):
        Stratified("bald", attributes=["bald", "pose"]).fit(x, scores)
    with pytest.raises(UserInputError, match="'pose' of kind value"):
        ContingencyTable.from_scores(scores, ["bald", "pose"])


def test_value_attributes_within_0_and_1_are_still_values():
    """A value that happens to lie in [0, 1] is not thresholded at 0.5 once its kind is known."""
    x, values = _planted()
    share = (values["pose"] - values["pose"].min()) / np.ptp(values["pose"])
    scores = Scores({"bald": values["bald"], "share": share}, {"share": "value"})
    assert resolve_attributes(scores) == ["bald"]
    with pytest.raises(UserInputError, match="'share' of kind value"):
        MAB("share", threshold=None).fit(x, scores)
    assert Regression("share").fit(x, scores).continuous_ == ["share"]


def _bank_without_kinds(path, x, scores):
    """A bank as written before `score_kinds` existed."""
    n = len(x)
    create_store(path.with_suffix(".zarr.partial"), n=n, chunk_size=64, dims={"z": (6,)},
                 score_names=list(scores), meta={"generator": "test", "seed": 0})  # fmt: skip
    from ganedit.latents.bank import open_store

    group = open_store(path.with_suffix(".zarr.partial"))
    for k, (a, b) in enumerate(chunk_ranges(n, 64)):
        arrays = {"z": x[a:b], "index": np.arange(a, b, dtype=np.int64)}
        arrays.update({f"scores/{s}": v[a:b].astype(np.float32) for s, v in scores.items()})
        write_chunk(group, k, arrays)
    return finalize(path.with_suffix(".zarr.partial"), path)


def test_banks_without_recorded_kinds_keep_yaw_a_value(tmp_path):
    x, values = _planted(n=100)
    old = {"smile": values["bald"], "yaw": values["pose"]}
    path = _bank_without_kinds(tmp_path / "old.zarr", x, old)
    assert LatentBank.open(path).score_kinds == {"smile": None, "yaw": None}
    scores = load_scores(str(path), None, "smile")
    assert scores.kinds == {"smile": "probability", "yaw": "value"}
    assert resolve_attributes(scores) == ["smile"]


# ------------------------------------------------------------------------------------------
# generate -p py:... -> contingency -> boundary, with a predictor of its own attributes

_MODULE = """
import torch

class BaldAndPose:
    attribute_kinds = {"bald": "probability", "pose": "value"}
    input_size = 16

    def predict(self, images, batch_size=256):
        # per image only (no batch statistics), so a bank does not depend on the batch size
        w = images.shape[-1]
        left = images[..., : w // 2].mean(dim=(1, 2, 3))
        right = images[..., w // 2 :].mean(dim=(1, 2, 3))
        top = images[..., : w // 2, :].mean(dim=(1, 2, 3))
        bottom = images[..., w // 2 :, :].mean(dim=(1, 2, 3))
        return {"bald": torch.sigmoid(400 * (top - bottom)), "pose": 100 * (left - right)}

def make():
    return BaldAndPose()
"""


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    from ganedit.cli import run
    from ganedit.models.registry import save_pretrained
    from ganedit.models.stylegan2 import Generator

    root = tmp_path_factory.mktemp("kinds")
    (root / "kinds_predictor_mod.py").write_text(textwrap.dedent(_MODULE))
    sys.path.insert(0, str(root))
    try:
        torch.manual_seed(0)
        g = Generator(16, style_dim=8, n_mlp=2, channel_max=8).eval()
        g.update_w_avg(n=64, generator=torch.Generator().manual_seed(0))
        save_pretrained(g, root / "tiny")
        code = run([str(a) for a in [
            "generate", "-g", root / "tiny", "-p", "py:kinds_predictor_mod:make", "-n", 60,
            "--chunk-size", 32, "--batch-size", 16, "-o", root / "bank.zarr", "--no-progress",
        ]])  # fmt: skip
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("kinds_predictor_mod", None)
    assert code == 0
    return root / "bank.zarr"


def test_the_bank_records_kinds_and_the_scores_vary(bank):
    opened = LatentBank.open(bank)
    assert opened.score_kinds == KINDS
    scores = opened.scores()
    assert 0.2 < (scores["bald"] >= 0.5).mean() < 0.8, scores["bald"]
    assert np.ptp(scores["pose"]) > 1 and (scores["pose"] < 0).any() and (scores["pose"] > 1).any()


def test_contingency_tables_the_probabilities_and_refuses_values(bank, tmp_path, capsys):
    out = tmp_path / "table.json"
    ok(capsys, ["contingency", "--latents", bank, "--threshold", "none", "-o", out])
    table = json.loads(out.read_text())
    assert table["attributes"] == ["bald"] and table["n_samples"] == 60
    line = user_error(capsys, ["contingency", "--latents", bank, "-a", "bald", "-a", "pose"])
    assert "'pose' of kind value" in line and "contingency table" in line


@pytest.mark.parametrize(
    "method, attribute, options",
    [
        ("interfacegan", "pose", ["--ratio", "0.2"]),
        ("regression", "pose", []),
        ("interfacegan", "bald", ["--ratio", "0.2"]),
        ("regression", "bald", []),
        ("stratified", "bald", ["--threshold", "none"]),
        ("mab", "bald", ["--threshold", "none", "-n", "40"]),
        ("fisher", "bald", ["--threshold", "none"]),
    ],
)
def test_boundary_learns_each_kind_with_the_methods_that_take_it(
    bank, tmp_path, capsys, method, attribute, options
):
    out = tmp_path / f"{method}_{attribute}.npy"
    args = ["boundary", "--method", method, "--latents", bank, "-a", attribute, "-o", out]
    text = ok(capsys, [*args, *options])
    assert f"direction of {attribute!r}" in text
    sidecar = json.loads(sidecar_path(out).read_text())
    assert sidecar["attribute_kind"] == KINDS[attribute]
    assert abs(np.linalg.norm(np.load(out)) - 1) < 1e-5


@pytest.mark.parametrize("method", ["mab", "stratified", "fisher"])
def test_boundary_refuses_a_value_for_probability_methods_in_one_line(
    bank, tmp_path, capsys, method
):
    out = tmp_path / "pose.npy"
    line = user_error(
        capsys, ["boundary", "--method", method, "--latents", bank, "-a", "pose", "-o", out]
    )
    assert f"method {method}" in line and "'pose' of kind value" in line
    assert not out.exists()


# ------------------------------------------------------------------------------------------
# The kinds through every file: score's .npz, bank export / import, score files


def test_bank_export_and_import_keep_a_value_a_value(bank, tmp_path, capsys):
    ref, back = tmp_path / "ref", tmp_path / "back.zarr"
    ok(capsys, ["bank", "export", bank, "-o", ref])
    assert json.loads((ref / "score_kinds.json").read_text()) == KINDS
    ok(capsys, ["bank", "import", ref, "-o", back])
    assert LatentBank.open(back).score_kinds == KINDS
    line = user_error(capsys, ["boundary", "--method", "mab", "-c", back, "-a", "pose",
                               "-o", tmp_path / "p.npy"])  # fmt: skip
    assert "'pose' of kind value" in line
    # The exported score files read the kinds beside them too.
    for scores in (ref / "scores_dict.npy", ref / "pose_scores.npy"):
        line = user_error(capsys, ["boundary", "--method", "stratified", "-c", ref / "w.npy",
                                   "-s", scores, "-a", "pose", "-o", tmp_path / "p.npy"])  # fmt: skip
        assert "'pose' of kind value" in line
    out = tmp_path / "pose.npy"
    ok(capsys, ["boundary", "--method", "regression", "-c", ref / "w.npy", "-s",
                ref / "pose_scores.npy", "-a", "pose", "-o", out])  # fmt: skip
    assert json.loads(sidecar_path(out).read_text())["attribute_kind"] == "value"


def test_a_scores_npz_carries_its_kinds(bank, tmp_path, capsys):
    from ganedit.models.scoring import save_scores

    scores = LatentBank.open(bank).scores()
    with_kinds, without = tmp_path / "s.npz", tmp_path / "old.npz"
    save_scores(scores, with_kinds, KINDS)
    np.savez(without, **scores)  # as `score` wrote it before kinds were recorded
    assert load_scores("", str(with_kinds), "").kinds == KINDS
    out = tmp_path / "table.json"
    ok(capsys, ["contingency", "--scores", with_kinds, "-t", "none", "-o", out])
    assert json.loads(out.read_text())["attributes"] == ["bald"]
    # Without kinds, the old rule reads pose as a probability: refused on its range, never used.
    line = user_error(capsys, ["contingency", "--scores", without, "-t", "none"])
    assert "probabilities in [0, 1] for 'pose'" in line


@pytest.mark.parametrize(
    "kinds, words",
    [
        ({"bald": "probability", "beard": "value"}, "kinds of ['beard']"),
        ({"pose": "angle"}, "score kinds among"),
        ({"pose": "probability"}, "probabilities in [0, 1] for 'pose'"),
    ],
)
def test_damaged_kinds_in_a_scores_file_are_one_line(bank, tmp_path, capsys, kinds, words):
    scores = LatentBank.open(bank).scores()
    np.savez(tmp_path / "s.npz", **scores, **{".kinds": np.array(json.dumps(kinds))})
    line = user_error(capsys, ["contingency", "--scores", tmp_path / "s.npz"])
    assert words in line and "s.npz" in line
