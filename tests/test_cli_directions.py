"""The direction workflow through the CLI: import, contingency, boundary, edit, evaluate."""

import json

import numpy as np
import pytest
import torch

from cli_run import user_error
from ganedit.cli import run
from ganedit.cli_options import expand_conditions
from ganedit.errors import UserInputError
from ganedit.models.registry import save_pretrained
from ganedit.models.stylegan2 import Generator
from planted import write_planted_reference

D = 8


def _ok(args, capsys=None):
    code = run([str(a) for a in args])
    if capsys is None:
        assert code == 0
        return ""
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A tiny generator (w_dim 8) and reference-style files with planted, correlated labels."""
    root = tmp_path_factory.mktemp("dirs")
    torch.manual_seed(0)
    g = Generator(16, style_dim=D, n_mlp=2, channel_max=8).eval()
    g.update_w_avg(n=64, generator=torch.Generator().manual_seed(0))
    save_pretrained(g, root / "tiny")
    ref = root / "ref"
    write_planted_reference(ref, 4000, D)
    _ok(["bank", "import", ref, "-o", root / "bank.zarr", "-g", root / "tiny"])
    return root


def test_conditions_take_several_paths_like_the_reference():
    argv = ["boundary", "--conditions", "a.npy", "b.npy", "-o", "x.npy"]
    assert expand_conditions(argv) == [
        "boundary", "--conditions", "a.npy", "--conditions", "b.npy", "-o", "x.npy",
    ]  # fmt: skip
    with pytest.raises(UserInputError, match="after --conditions, received none"):
        expand_conditions(["boundary", "--conditions", "-o", "x.npy"])


def test_contingency_table_heatmap_and_json(work, capsys):
    out = _ok(["contingency", "--bank", work / "bank.zarr", "-t", "0.9",
               "--heatmap", work / "table.png", "-o", work / "table.json"], capsys)  # fmt: skip
    table = json.loads((work / "table.json").read_text())
    assert table["threshold"] == 0.9 and table["n_samples"] > 1000
    assert (work / "table.png").stat().st_size > 1000
    assert "{" not in out and f"{table['max_balanced_size']}" in out  # a table, not JSON
    assert table["max_balanced_size"] > 0
    both = ["contingency", "--bank", work / "bank.zarr", "-s", work / "ref" / "scores_dict.npy"]
    assert "received both" in user_error(capsys, both)


def test_boundaries_from_bank_and_reference_files(work):
    _ok(["boundary", "--method", "mab", "-c", work / "bank.zarr", "-a", "glasses", "-n", 400,
         "-t", "0.9", "-o", work / "mab_glasses.npy"])  # fmt: skip
    mab = np.load(work / "mab_glasses.npy")
    assert mab.shape == (1, D) and mab.dtype == np.float32
    sidecar = json.loads((work / "mab_glasses.npy.json").read_text())
    assert sidecar["method"] == "mab" and sidecar["attribute"] == "glasses"
    assert sidecar["space"] == "w"
    # Planted: glasses lives on coordinate 2 only; balancing removes the correlated partners.
    assert abs(mab[0, 2]) > 0.95
    # The reference's own files and flags: -c codes, -s one score file, -n as a ratio.
    _ok(["boundary", "--method", "interfacegan", "-c", work / "ref" / "w.npy",
         "-s", work / "ref" / "glasses_scores.npy", "-a", "glasses", "-n", 0.05,
         "-o", work / "ifg_glasses.npy"])  # fmt: skip
    for attr in ("gender", "age"):
        _ok(["boundary", "--method", "interfacegan", "-c", work / "bank.zarr", "-a", attr,
             "-o", work / f"ifg_{attr}.npy"])  # fmt: skip
    _ok(["boundary", "--method", "conditional", "-c", work / "bank.zarr", "-a", "glasses",
         "--conditions", work / "ifg_gender.npy", "--conditions", work / "ifg_age.npy",
         "-o", work / "cond_glasses.npy"])  # fmt: skip
    cond = np.load(work / "cond_glasses.npy")[0]
    for other in ("gender", "age"):
        assert abs(cond @ np.load(work / f"ifg_{other}.npy")[0]) < 1e-5


def test_default_method_is_the_studys_recommendation(work):
    from ganedit.choices import DEFAULT_METHOD

    _ok(["boundary", "-c", work / "bank.zarr", "-a", "glasses", "-o", work / "default.npy"])
    sidecar = json.loads((work / "default.npy.json").read_text())
    assert sidecar["method"] == DEFAULT_METHOD
    planted = np.eye(D)[2]  # glasses lives on coordinate 2 of the planted bank
    assert np.load(work / "default.npy")[0] @ planted > 0.95


def test_edit_writes_strip_gif_and_latents(work):
    _ok(["boundary", "--method", "stratified", "-c", work / "bank.zarr", "-a", "smile",
         "-o", work / "strat_smile.npy"])  # fmt: skip
    _ok(["edit", "-b", work / "strat_smile.npy", "-g", work / "tiny", "-o", work / "edit",
         "-n", 2, "--steps", 3, "--no-progress"])  # fmt: skip
    names = sorted(p.name for p in (work / "edit").iterdir())
    assert names == [".ganedit.json", "config.json", "edit.gif", "latents.npy", "strip.png"]
    # Codes from a bank: only the first n rows are read.
    _ok(["edit", "-b", work / "strat_smile.npy", "-g", work / "tiny", "-o", work / "edit_bank",
         "-c", work / "bank.zarr", "-n", 3, "--steps", 2, "--no-progress"])  # fmt: skip
    edited = np.load(work / "edit_bank" / "latents.npy")
    np.testing.assert_array_equal(edited, np.load(work / "ref" / "w.npy")[:3])
    _ok(["edit", "-b", work / "strat_smile.npy", "-b", work / "mab_glasses.npy",
         "--strength", 1, "--strength", -1, "-g", work / "tiny", "-o", work / "edit2",
         "-n", 2, "--steps", 2, "--mode", "relative", "--no-progress"])  # fmt: skip


def test_evaluate_writes_a_report(work):
    _ok(["evaluate", "-b", work / "mab_glasses.npy", "-b", work / "cond_glasses.npy",
         "-g", work / "tiny", "-o", work / "report", "--eval-n", 24, "--bootstrap", 5,
         "--steps", 3, "--no-progress"])  # fmt: skip
    report = json.loads((work / "report" / "report.json").read_text())
    assert [d["name"] for d in report["directions"]] == ["mab", "interfacegan+conditional"]
    assert (work / "report" / "report.md").is_file()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["boundary", "--method", "mab", "-n", "2.5"], "whole subset size"),
        (["boundary", "--method", "svm9"], "one of interfacegan"),
        (["boundary", "--method", "mab", "--ratio", "0.1"], "options of mab"),
        (["boundary", "-a", "beard"], "attribute among"),
        (["boundary", "--method", "mab", "-t", "nan"], "(0.5, 1) or none"),
        (["boundary", "-n", "inf"], "finite number"),
        (["contingency"], "--latents BANK or --scores"),
    ],
)
def test_direction_mistakes_are_one_line(work, capsys, args, words):
    if args[0] == "boundary":
        args = [*args, "-c", work / "bank.zarr", "-o", work / "x.npy"]
        if "-a" not in args:
            args += ["-a", "smile"]
    assert words in user_error(capsys, args)


def test_mab_without_a_confidence_filter_like_the_reference(work):
    _ok(["boundary", "--method", "mab", "-c", work / "bank.zarr", "-a", "glasses", "-n", 400,
         "-t", "none", "-o", work / "mab_nofilter.npy"])  # fmt: skip
    sidecar = json.loads((work / "mab_nofilter.npy.json").read_text())
    assert sidecar["params"]["threshold"] is None
    assert sidecar["fit"]["n_confident"] == 4000  # every sample kept


def test_boundaries_of_another_generator_or_space_are_refused_unless_forced(work, capsys):
    _ok(["boundary", "--method", "stratified", "-c", work / "bank.zarr", "-a", "age",
         "-o", work / "strat_age.npy"], capsys)  # fmt: skip
    torch.manual_seed(1)
    other = Generator(16, style_dim=D, n_mlp=2, channel_max=8).eval()
    save_pretrained(other, work / "other")
    edit = ["edit", "-b", work / "strat_age.npy", "-n", 1, "--steps", 2, "--no-progress"]
    line = user_error(capsys, [*edit, "-g", work / "other", "-o", work / "e_other"])
    assert "learned on 'tiny'" in line and "--force" in line
    line = user_error(capsys, [*edit, "-g", work / "tiny", "--space", "z", "-o", work / "e_z"])
    assert "learned in 'w', used in 'z'" in line
    _ok([*edit, "-g", work / "other", "-o", work / "e_forced", "--force"], capsys)
    record = json.loads((work / "e_forced" / "config.json").read_text())
    assert record["force"] and record["provenance"][0]["forced"]
    assert record["provenance"][0]["mismatches"]
    evaluate = ["evaluate", "-b", work / "strat_age.npy", "--eval-n", 10, "--steps", 2,
                "--bootstrap", 0, "--no-progress"]  # fmt: skip
    assert "--force" in user_error(capsys, [*evaluate, "-g", work / "other", "-o", work / "r2"])


def test_the_summary_names_the_method_that_keeps_the_most(tmp_path, capsys):
    from ganedit.cli.directions import _print_ranking

    def direction(name, attribute, identity, off):
        m = {"step": 1.0, "identity": identity, "off_target": off}
        return {"name": name, "attribute": attribute, "matched": {"50": m, "90": dict(m)}}

    report = {
        "directions": [direction("drifty", "a", 0.9, 0.2), direction("faceless", "a", 0.1, 0.0)]
    }
    (tmp_path / "report.json").write_text(json.dumps(report))
    _print_ranking(tmp_path / "report.md")
    out = capsys.readouterr().out
    assert "1. faceless" in out  # least drift at 90%
    assert (
        "keeps the most at 50% flips (identity minus drift): drifty; per attribute: a drifty" in out
    )
