"""The self-conditioned fine-tune: starts as the pretrained generator, resumes exactly."""

import json

import numpy as np
import pytest
import torch

from ganedit.errors import UserInputError
from ganedit.models.modes import ModeLayout, load_mode_prior, mode_vector
from ganedit.models.registry import load_pretrained, save_pretrained
from ganedit.models.stylegan2 import Generator
from ganedit.selfcond.train import SelfCondConfig, train_selfcond
from ganedit.utils.context import RunContext

QUIET = RunContext(progress=False)


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    from ganedit.cli import run

    root = tmp_path_factory.mktemp("sc")
    torch.manual_seed(0)
    g = Generator(16, style_dim=16, n_mlp=2, channel_max=16).eval()
    g.update_w_avg(n=256, generator=torch.Generator().manual_seed(0))
    save_pretrained(g, root / "base")
    for argv in (
        ["world", "render", "-n", 24, "--size", 16, "-o", root / "r", "--no-progress"],
        ["selflabel", "-i", root / "r", "-o", root / "labels", "--from-table",
         root / "r" / "labels.npz", "--columns", "smile,yaw"],
        ["resample", "-l", root / "labels", "-o", root / "balanced"],
    ):  # fmt: skip
        assert run([str(a) for a in argv]) == 0
    return root


def _cfg(root, **kw):
    base = dict(generator=str(root / "base"), data=str(root / "r"), labels=str(root / "labels"),
                resample=str(root / "balanced"), iterations=12, d_warmup=4, batch=4,
                checkpoint_every=6, sample_every=6)  # fmt: skip
    return SelfCondConfig(**{**base, **kw})


def test_fine_tune_writes_a_self_conditioned_generator(setting, tmp_path):
    out = train_selfcond(_cfg(setting), tmp_path / "run", ctx=QUIET)
    g = load_pretrained(out)
    assert g.mode_attributes == ["smile", "yaw"] and g.num_modes == 7
    record = json.loads((out / "config.json").read_text())["selfcond"]
    assert record["attributes"] == ["smile", "yaw"] and record["init"] == "offset"
    assert record["base"]["name"] == "base"
    assert (tmp_path / "run" / "samples" / "0000012.png").is_file()
    # The data's modes ship with the model: every image's coordinates, from the labels.
    prior = load_mode_prior(out, ModeLayout(["smile", "yaw"]))
    assert prior is not None and prior.shape[1] == 2 and len(prior) >= 8
    assert prior.min() >= 0.0 and prior.max() <= 1.0 and prior.std(0).min() > 0.05
    stats = [json.loads(x) for x in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    assert "g_mode" in stats[-1] and np.isfinite(stats[-1]["d_mode"])
    modes = mode_vector(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), True)
    images = g(torch.randn(2, 16), modes=modes)
    assert torch.isfinite(images).all()


def test_resume_continues_exactly(setting, tmp_path, monkeypatch):
    from interrupt import run_killed_at

    full = load_pretrained(train_selfcond(_cfg(setting), tmp_path / "full", ctx=QUIET))
    part = tmp_path / "part"
    run_killed_at(monkeypatch, 8, lambda: train_selfcond(_cfg(setting), part, ctx=QUIET))
    resumed = load_pretrained(train_selfcond(_cfg(setting), tmp_path / "part", ctx=QUIET))
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in full.state_dict().items())


def test_before_any_generator_step_it_renders_as_the_pretrained_one(setting, tmp_path):
    # d_warmup covers every step: the generator never moves, for any modes (offset start)
    out = train_selfcond(_cfg(setting, iterations=3, d_warmup=3), tmp_path / "w", ctx=QUIET)
    g, base = load_pretrained(out), load_pretrained(setting / "base")
    ws = base.mapping(torch.randn(3, 16))
    modes = mode_vector(torch.rand(3, 2, generator=torch.Generator().manual_seed(0)), True)
    with torch.no_grad():
        assert torch.equal(g.synthesis(ws, modes=modes), base.synthesis(ws))


def test_mismatched_inputs_are_refused(setting, tmp_path):
    from ganedit.errors import UserInputError

    with pytest.raises(UserInputError, match="attributes among"):
        train_selfcond(_cfg(setting, attributes=("age",)), tmp_path / "x", ctx=QUIET)
    with pytest.raises(UserInputError, match="init"):
        _cfg(setting, init="clone")
    assert not (tmp_path / "x").exists()


def test_train_selfcond_cli(setting, tmp_path, capsys):
    from cli_run import ok

    out = ok(capsys, ["train-selfcond", "-i", setting / "r", "-l", setting / "labels",
                      "--resample", setting / "balanced", "-g", setting / "base",
                      "-o", tmp_path / "sc", "--iter", 4, "--d-warmup", 2, "--batch-size", 4,
                      "--attributes", "yaw", "--init", "copy", "--mode-loss", "twin", "--fake-modes", "data",
                      "--no-progress"])  # fmt: skip
    g = load_pretrained(out.strip())
    assert g.mode_attributes == ["yaw"]
    config = json.loads((tmp_path / "sc" / "config.json").read_text())
    assert config["init"] == "copy" and config["gan"]["d_warmup"] == 2
    assert config["mode_loss"] == "twin" and config["fake_modes"] == "data"


def test_the_saved_discriminator_reads_modes(setting, tmp_path):
    from ganedit.models.modes import read_modes
    from ganedit.models.registry import load_mode_reader

    g = train_selfcond(_cfg(setting, iterations=2, d_warmup=0), tmp_path / "r", ctx=QUIET)
    attributes = load_pretrained(g).mode_attributes
    d = load_mode_reader(g, attributes)
    assert d.num_modes == 7 == 1 + 3 * len(attributes)
    with pytest.raises(UserInputError, match="mode reader for the modes"):
        load_mode_reader(g, attributes[:1])
    with pytest.raises(UserInputError, match="--modes neutral"):
        load_mode_reader(tmp_path, attributes)
    t = read_modes(d, torch.rand(3, 3, 16, 16) * 2 - 1, batch_size=2)
    assert t.shape == (3, 2) and bool(((t >= 0) & (t <= 1)).all())
    # a head with all its mass on "high" for attribute 0 and "low" for 1 reads t = 1 and 0
    with torch.no_grad():
        d.final_class[1].weight.zero_()
        d.final_class[1].bias.copy_(torch.tensor([0, -50, -50, 50, 50, -50, -50.0]))
    t = read_modes(d, torch.zeros(2, 3, 32, 32))  # resized to the reader's 16 px
    assert torch.allclose(t, torch.tensor([[1.0, 0.0], [1.0, 0.0]]), atol=1e-6)


def test_a_pickle_starts_the_discriminator_from_its_own(setting, tmp_path):
    """An NVIDIA .pkl comes with its D: the fine-tune starts from it (trunk and real/fake
    head, minibatch-std group, conv_clamp), the mode head fresh. With a learning rate of
    1e-12 one step leaves it as read."""
    from ganedit.models.registry import MODE_READER
    from ganedit.models.stylegan2 import load_nvidia_discriminator
    from nvidia_pkl_standin import write_tiny_nvidia_pkl

    pkl = write_tiny_nvidia_pkl(tmp_path / "net.pkl")
    cfg = _cfg(setting, generator=str(pkl), iterations=1, d_warmup=0, lr=1e-12)
    out = train_selfcond(cfg, tmp_path / "run", ctx=QUIET)
    reader = load_pretrained(out / MODE_READER)
    expected = load_nvidia_discriminator(pkl).state_dict()
    assert reader.config["conv_clamp"] == 256 and reader.stddev_group == 4
    for key, value in reader.state_dict().items():
        if key.startswith("final_class."):
            continue
        torch.testing.assert_close(value, expected[key], rtol=0, atol=1e-9)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["gan"]["mbstd_group"] == 4
    assert json.loads((out / "config.json").read_text())["selfcond"]["discriminator"] == (
        "pretrained"
    )


def test_a_conditional_pickle_is_refused(setting, tmp_path):
    from nvidia_pkl_standin import write_tiny_nvidia_pkl

    pkl = write_tiny_nvidia_pkl(tmp_path / "cond.pkl", c_dim=4)
    with pytest.raises(UserInputError, match="class-conditional"):
        train_selfcond(_cfg(setting, generator=str(pkl)), tmp_path / "x", ctx=QUIET)
    assert not (tmp_path / "x").exists()


def test_diversity_probe_logs_identity_spread_at_neutral_and_uniform_modes(setting, tmp_path):
    train_selfcond(_cfg(setting, iterations=6, probe_every=3), tmp_path / "run", ctx=QUIET)
    lines = [json.loads(x) for x in (tmp_path / "run" / "probe.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [3, 6]
    for line in lines:
        for at in ("neutral", "uniform"):
            assert -1.0 <= line[at]["identity_cosine"] <= 1.0 and line[at]["yaw_std"] >= 0.0


def test_neutral_share_draws_that_share_of_attributes_at_the_neutral_mode():
    from ganedit.selfcond.conditioning import ModeConditioning

    gen = torch.Generator().manual_seed(0)
    fed, target = ModeConditioning(4, neutral_share=0.5).sample(4000, gen, "cpu")
    t = ModeLayout.unnamed(4).coordinates(target)
    neutral = (t - 0.5).abs() < 1e-6
    assert abs(neutral.float().mean().item() - 0.5) < 0.03
    assert (fed[:, 1:].reshape(-1, 4, 3)[neutral] == 0).all()  # the base constant alone
    gen = torch.Generator().manual_seed(0)
    plain = ModeConditioning(4).sample(8, gen, "cpu")[1]
    again = ModeConditioning(4, neutral_share=0.0).sample(
        8, torch.Generator().manual_seed(0), "cpu"
    )
    assert torch.equal(plain, again[1])  # the recipe's draws are unchanged without the option


def test_a_twin_mode_loss_fine_tune_records_it_and_its_reader_still_reads(setting, tmp_path):
    from ganedit.models.modes import read_modes
    from ganedit.models.registry import load_mode_reader
    from ganedit.models.stylegan2 import load_rosinality_checkpoint
    from ganedit.models.stylegan2.convert import export_rosinality_checkpoint

    cfg = _cfg(setting, iterations=6, mode_loss="twin", fake_modes="data")
    out = train_selfcond(cfg, tmp_path / "run", ctx=QUIET)
    record = json.loads((out / "config.json").read_text())["selfcond"]
    assert record["mode_loss"] == "twin" and record["fake_modes"] == "data"
    stats = [json.loads(x) for x in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    assert np.isfinite(stats[-1]["g_twin"]) and np.isfinite(stats[-1]["d_twin"])
    reader = load_mode_reader(out, ["smile", "yaw"])
    assert reader.twin_modes
    # Exported in rosinality's layout, the twin head (training only) stays behind: the file
    # holds SC-GAN's discriminator keys alone and reads back as a reader with one mode head.
    pt = export_rosinality_checkpoint(tmp_path / "sc.pt", load_pretrained(out), d=reader)
    back = load_rosinality_checkpoint(pt)["d"]
    assert not back.twin_modes and back.num_modes == reader.num_modes
    assert not any(k.startswith("final_twin.") for k in torch.load(pt, weights_only=True)["d"])
    for key, value in back.state_dict().items():
        torch.testing.assert_close(value, reader.state_dict()[key], rtol=0, atol=0)
    t = read_modes(reader, torch.rand(2, 3, 16, 16) * 2 - 1)
    assert t.shape == (2, 2) and bool(((t >= 0) & (t <= 1)).all())
    with pytest.raises(UserInputError, match="mode_loss"):
        _cfg(setting, mode_loss="projection")
    with pytest.raises(UserInputError, match="fake_modes"):
        _cfg(setting, fake_modes="normal")


@pytest.fixture(scope="module")
def gan_run(setting):
    from ganedit.training.gan import GanConfig, train_gan

    cfg = GanConfig(data=str(setting / "r"), size=16, style_dim=16, n_mlp=2, channel_max=16,
                    batch=4, iterations=3, checkpoint_every=3, sample_every=3)  # fmt: skip
    run = setting / "gan-run"
    if not run.exists():
        train_gan(cfg, run, progress=False)
    return run


@pytest.mark.parametrize("where", ["run", "checkpoint"])
def test_a_train_gan_run_brings_its_discriminator(setting, gan_run, tmp_path, where):
    """Given a train-gan run folder (or its checkpoint/), the fine-tune starts from the
    checkpoint's g_ema and from the discriminator it was trained against (trunk and real/fake
    head; the mode heads fresh): with a learning rate of 1e-12, one step leaves both as read."""
    from ganedit.models.io import load_weights
    from ganedit.models.registry import MODE_READER

    source = gan_run if where == "run" else gan_run / "checkpoint"
    cfg = _cfg(setting, generator=str(source), iterations=1, d_warmup=0, lr=1e-12)
    out = train_selfcond(cfg, tmp_path / "sc", ctx=QUIET)
    reader = load_pretrained(out / MODE_READER)
    expected = load_weights(gan_run / "checkpoint" / "d.safetensors")
    for key, value in reader.state_dict().items():
        if not key.startswith(("final_class.", "final_twin.")):
            torch.testing.assert_close(value, expected[key], rtol=0, atol=1e-9)
    record = json.loads((out / "config.json").read_text())["selfcond"]
    assert record["discriminator"] == "pretrained" and record["base"]["name"] == "gan-run@3"
    g = load_pretrained(out)
    g_ema = load_weights(gan_run / "checkpoint" / "g_ema.safetensors")
    torch.testing.assert_close(g.state_dict()["style.1.weight"], g_ema["style.1.weight"],
                               rtol=0, atol=1e-6)  # fmt: skip


def test_a_damaged_or_self_conditioned_run_is_refused(setting, gan_run, tmp_path):
    import shutil

    from ganedit.errors import DamagedInputError

    broken = tmp_path / "broken"
    shutil.copytree(gan_run / "checkpoint", broken)
    (broken / "state.json").write_text('{"optimizers": {}}')
    with pytest.raises(DamagedInputError, match="meta and config"):
        train_selfcond(_cfg(setting, generator=str(broken)), tmp_path / "a", ctx=QUIET)
    shutil.copytree(gan_run / "checkpoint", tmp_path / "nan", dirs_exist_ok=True)
    from safetensors.torch import save_file

    weights = load_weights_dict(tmp_path / "nan" / "d.safetensors")
    weights[next(iter(weights))][...] = float("nan")
    save_file(weights, str(tmp_path / "nan" / "d.safetensors"))
    with pytest.raises(DamagedInputError):
        train_selfcond(_cfg(setting, generator=str(tmp_path / "nan")), tmp_path / "b", ctx=QUIET)
    sc = train_selfcond(_cfg(setting, iterations=2, d_warmup=0), tmp_path / "sc", ctx=QUIET)
    with pytest.raises(UserInputError, match="unconditional train-gan run"):
        train_selfcond(_cfg(setting, generator=str(sc.parent)), tmp_path / "c", ctx=QUIET)
    assert not any((tmp_path / x).exists() for x in ("a", "b", "c"))


def load_weights_dict(path):
    from safetensors.torch import load_file

    return dict(load_file(str(path)))


def test_a_finished_run_extended_to_more_iterations_replaces_its_model(setting, tmp_path):
    """The model folder holds the mode reader and the data's modes beside the generator; a
    rerun with a larger --iter resumes and replaces all of them (it once refused its own
    mode-prior.json as a file ganedit did not write, after training to the end)."""
    first = train_selfcond(_cfg(setting, iterations=2, d_warmup=0), tmp_path / "run", ctx=QUIET)
    out = train_selfcond(_cfg(setting, iterations=4, d_warmup=0), tmp_path / "run", ctx=QUIET)
    assert out == first
    assert json.loads((out / "config.json").read_text())["iterations"] == 4
    assert json.loads((out / "mode-reader" / "config.json").read_text())["iterations"] == 4
    assert (out / "mode-prior.json").is_file()


def test_evaluate_generator_measures_modes_at_the_data_modes_it_ships(setting, tmp_path, capsys):
    from cli_run import ok

    out = train_selfcond(_cfg(setting, iterations=2, d_warmup=0), tmp_path / "run", ctx=QUIET)
    text = ok(capsys, ["evaluate-generator", "-g", out, "-n", 8, "--n-fd", 6, "--n-identity", 6,
                       "--n-modes", 6, "-o", tmp_path / "r.json", "--no-progress"])  # fmt: skip
    assert "at the data's modes: identity cosine" in text
    assert "mode yaw (others at the data's): identity between its ends" in text
    report = json.loads((tmp_path / "r.json").read_text())["diversity"]
    assert set(report["modes_at_data"]) == set(report["modes"]) == {"smile", "yaw"}
    assert report["modes_at_data"]["smile"]["t=1"]["n_identity"] == 6
    at = report["data_modes"]
    assert at["yaw_std"] >= 0 and -1 <= at["identity_cosine"] <= 1
    assert "at uniform modes: identity cosine" in text and "Frechet distance" in text
    for key in ("data_modes", "uniform_modes"):
        assert report[key]["frechet_distance"] >= 0 and report[key]["n"] == 6
        assert 0 <= report[key]["precision_recall"]["recall"] <= 1
    assert report["modes_at_data"]["smile"]["t=0"]["shares_at"] == "rows of the data on this side"
