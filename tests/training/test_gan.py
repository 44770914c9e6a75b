import dataclasses
import json

import pytest
import torch

import ganedit.training.gan as gan_mod
from ganedit.errors import UserInputError
from ganedit.models.registry import load_pretrained
from ganedit.training.gan import GanConfig, train_gan
from ganedit.utils.context import RunContext
from ganedit.world.config import load_world_config
from ganedit.world.dataset import RenderJob, write_world_dataset

QUIET = RunContext(progress=False)


@pytest.fixture(scope="module")
def data16(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "faces16.lmdb"
    return str(
        write_world_dataset(load_world_config("celeba"), RenderJob(n=48, size=16), path, ctx=QUIET)
    )


def _cfg(data, **kw):
    base = dict(data=data, size=16, style_dim=32, n_mlp=2, channel_max=32, batch=4, iterations=20)
    base.update(checkpoint_every=10, sample_every=10, d_reg_every=4, g_reg_every=2)
    return GanConfig(**{**base, **kw})


def test_smoke_run_stays_finite_and_writes_its_artifacts(data16, tmp_path):
    out = train_gan(_cfg(data16), tmp_path / "run", progress=False)
    stats = [
        json.loads(line) for line in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()
    ]
    assert stats[-1]["step"] == 20
    for record in stats:
        assert all(torch.isfinite(torch.tensor(v)) for k, v in record.items() if k != "step")
    assert any("r1" in r for r in stats) and any("path" in r for r in stats)
    g = load_pretrained(out)
    images = g(torch.randn(2, 32))
    assert images.shape == (2, 3, 16, 16) and torch.isfinite(images).all()
    assert (tmp_path / "run" / "samples" / "0000020.png").is_file()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["size"] == 16


def test_resume_continues_exactly_as_an_uninterrupted_run(data16, tmp_path, monkeypatch):
    from interrupt import run_killed_at

    full = load_pretrained(train_gan(_cfg(data16), tmp_path / "full", progress=False))
    run_killed_at(
        monkeypatch, 13, lambda: train_gan(_cfg(data16), tmp_path / "part", progress=False)
    )
    resumed = load_pretrained(train_gan(_cfg(data16), tmp_path / "part", progress=False))
    differ = [
        k for k, v in full.state_dict().items() if not torch.equal(v, resumed.state_dict()[k])
    ]
    assert differ == []


def test_wrong_image_size_is_a_user_error(data16, tmp_path):
    with pytest.raises(UserInputError, match="32x32"):
        train_gan(_cfg(data16, size=32), tmp_path / "run", progress=False)


def test_minibatch_group_reaches_the_discriminator_and_must_divide_the_batch(data16, tmp_path):
    assert gan_mod.setup_gan(_cfg(data16, mbstd_group=2)).d.stddev_group == 2
    with pytest.raises(UserInputError, match="divisible by --mbstd-group 3, received 4"):
        train_gan(_cfg(data16, mbstd_group=3), tmp_path / "run", progress=False)


def test_without_path_regularisation_no_path_step_runs(data16, tmp_path):
    train_gan(_cfg(data16, path_regularize=0.0, iterations=6), tmp_path / "run", progress=False)
    stats = (tmp_path / "run" / "stats.jsonl").read_text()
    assert '"r1"' in stats and '"path"' not in stats


def test_train_gan_cli(data16, tmp_path, capsys):
    from ganedit.cli import run

    args = ["train-gan", "-i", data16, "-o", str(tmp_path / "r"), "--size", "16", "--iter", "3",
            "--batch-size", "2", "--style-dim", "16", "--n-mlp", "1", "--channel-max", "16",
            "--no-progress", "--mbstd-group", "2"]  # fmt: skip
    assert run([str(a) for a in args]) == 0, capsys.readouterr().err
    assert (tmp_path / "r" / "g_ema" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "r" / "config.json").read_text())["mbstd_group"] == 2
    capsys.readouterr()
    assert run([str(a) for a in [*args, "--channels", "16,x"]]) == 2
    assert "comma-separated integers, received '16,x'" in capsys.readouterr().err


def test_fine_tune_from_a_stylegan2_pytorch_checkpoint(data16, tmp_path):
    from ganedit.models.stylegan2 import export_rosinality_checkpoint

    first = load_pretrained(train_gan(_cfg(data16, iterations=2), tmp_path / "a", progress=False))
    export_rosinality_checkpoint(tmp_path / "a.pt", first)
    state = gan_mod.setup_gan(_cfg(data16))
    gan_mod._init_weights(state, tmp_path / "a.pt")
    z = torch.randn(2, 32)
    torch.testing.assert_close(state.g_ema(z), first(z))
    with pytest.raises(UserInputError, match="configured generator"):
        gan_mod._init_weights(gan_mod.setup_gan(_cfg(data16, size=32)), tmp_path / "a.pt")


@pytest.mark.slow  # two processes of torchrun: 14 s on 2 cores
def test_two_process_data_parallel_run_through_torchrun(data16, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += [
        "-m",
        "ganedit",
        "train-gan",
        "-i",
        data16,
        "--out",
        str(out),
        "--size",
        "16",
        "--iter",
        "3",
    ]
    cmd += [
        "--batch-size",
        "4",
        "--style-dim",
        "16",
        "--n-mlp",
        "1",
        "--channel-max",
        "16",
        "--no-progress",
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=240,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    g = load_pretrained(out / "g_ema")
    assert torch.isfinite(g(torch.randn(2, 16))).all()
    stats = (out / "stats.jsonl").read_text().splitlines()
    assert len(stats) == 1 and json.loads(stats[0])["step"] == 3  # written once, by process 0


def test_resume_tolerates_new_fields_and_longer_runs_but_not_other_changes(data16, tmp_path):
    train_gan(_cfg(data16, iterations=2), tmp_path / "run", progress=False)
    state_file = tmp_path / "run" / "checkpoint" / "state.json"
    saved = json.loads(state_file.read_text())
    del saved["meta"]["config"]["mixing"]  # as if written before `mixing` existed
    state_file.write_text(json.dumps(saved))
    train_gan(_cfg(data16, iterations=3), tmp_path / "run", progress=False)  # extended by one
    assert json.loads(state_file.read_text())["meta"]["step"] == 3
    narrow = _cfg(data16, iterations=1, channels=(32, 24, 16))
    train_gan(narrow, tmp_path / "narrow", progress=False)  # the tuple comes back a list
    train_gan(dataclasses.replace(narrow, iterations=2), tmp_path / "narrow", progress=False)
    assert load_pretrained(tmp_path / "narrow" / "g_ema").channels == {4: 32, 8: 24, 16: 16}
    with pytest.raises(UserInputError, match="config of the run"):
        train_gan(_cfg(data16, iterations=4, r1=1.0), tmp_path / "run", progress=False)


def test_ema_rampup_caps_the_half_life_early_and_lets_it_reach_ema_kimg():
    plain = GanConfig(batch=16, ema_kimg=5.0)
    ramped = GanConfig(batch=16, ema_kimg=5.0, ema_rampup=0.05)
    # Step 0: 16 images seen, half-life 0.8 images instead of 5000: the EMA follows G.
    assert gan_mod.ema_decay(ramped, 0) < 1e-5 < gan_mod.ema_decay(plain, 0)
    # Half-life 0.05 * 16 * (step + 1) reaches 5000 images at step 6249.
    assert gan_mod.ema_decay(ramped, 6249) == pytest.approx(gan_mod.ema_decay(plain, 6249))
    assert gan_mod.ema_decay(ramped, 999) == pytest.approx(0.5 ** (16 / (0.05 * 16 * 1000)))


def test_networks_and_fine_tuning_weights_are_checked_before_the_run_folder(data16, tmp_path):
    with pytest.raises(UserInputError, match="channel"):
        train_gan(_cfg(data16, channels=(8, 8)), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    first = tmp_path / "first"
    train_gan(_cfg(data16, iterations=1), first, progress=False)
    ckpt = first / "checkpoint"
    (ckpt / "d.safetensors").write_bytes((ckpt / "d.safetensors").read_bytes()[:100])
    with pytest.raises(UserInputError, match="d.safetensors"):  # was a SafetensorError
        train_gan(_cfg(data16), tmp_path / "tuned", init_from=ckpt, progress=False)
    (ckpt / "d.safetensors").write_bytes((ckpt / "g.safetensors").read_bytes())
    with pytest.raises(UserInputError, match="another one"):  # was a RuntimeError
        train_gan(_cfg(data16), tmp_path / "tuned", init_from=ckpt, progress=False)
    assert not (tmp_path / "tuned").exists()


def test_discriminator_warm_up_leaves_the_generator_alone(data16):
    from ganedit.datasets import ImageDataset
    from ganedit.training.gan import BatchSampler, gan_step, setup_gan

    cfg = _cfg(data16, d_warmup=2)
    state = setup_gan(cfg)
    sampler = BatchSampler(ImageDataset(data16), cfg)
    g_before = {k: v.clone() for k, v in state.g.state_dict().items()}
    ema_before = {k: v.clone() for k, v in state.g_ema.state_dict().items()}
    d_before = [p.clone() for p in state.d.parameters()]
    for _ in range(2):
        stats = gan_step(state, cfg, sampler)
        assert "g_loss" not in stats and "d_loss" in stats
    assert all(torch.equal(v, state.g.state_dict()[k]) for k, v in g_before.items())
    assert all(torch.equal(v, state.g_ema.state_dict()[k]) for k, v in ema_before.items())
    assert any(not torch.equal(a, b) for a, b in zip(d_before, state.d.parameters(), strict=True))
    assert "g_loss" in gan_step(state, cfg, sampler)  # step 2: the generator trains
    assert any(not torch.equal(v, state.g.state_dict()[k]) for k, v in g_before.items())


def test_probe_runs_at_its_interval_and_at_the_end_and_a_resume_logs_each_step_once(
    data16, tmp_path, monkeypatch
):
    from interrupt import run_killed_at

    seen = []

    def probe(g):
        seen.append(g.training)
        return {"mean": float(g(torch.zeros(1, 32)).mean())}

    def train():
        return train_gan(
            _cfg(data16, iterations=25, probe_every=5), tmp_path / "run", progress=False,
            probe=probe,
        )  # fmt: skip

    run_killed_at(monkeypatch, 17, train)  # probed at 15, resumed from the checkpoint at 10
    assert (tmp_path / "run" / "probe.jsonl").read_text().count('"step": 15') == 1
    train()
    lines = [json.loads(x) for x in (tmp_path / "run" / "probe.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [5, 10, 15, 20, 25]
    assert seen and not any(seen)  # g_ema is measured in eval mode
    assert all(isinstance(x["mean"], float) for x in lines)


def test_a_failing_probe_is_recorded_and_training_goes_on(data16, tmp_path):
    from ganedit.errors import FitError

    def probe(g):
        raise FitError("expected both classes of smile, received one")

    train_gan(_cfg(data16, iterations=10, probe_every=5), tmp_path / "run", progress=False,
              probe=probe)  # fmt: skip
    lines = (tmp_path / "run" / "probe.jsonl").read_text().splitlines()
    assert len(lines) == 2 and "both classes" in json.loads(lines[0])["error"]
    assert (tmp_path / "run" / "g_ema").is_dir()
