"""e4e encoder training on a tiny StyleGAN2 generator (16 px, 6 style rows) and a tiny encoder.

The models are small enough that one thread is fastest; the module pins torch to one thread
(and restores the setting afterwards), which also keeps the file quick on a loaded machine.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganedit.inversion.train_encoder as te
from ganedit.errors import UserInputError
from ganedit.inversion.encode import encode_images
from ganedit.inversion.train_encoder import (
    EncoderTrainConfig,
    encoder_step,
    setup_encoder_training,
    stage_at,
    train_encoder,
    world_images,
)
from ganedit.models.encoder.networks import Encoder4Editing
from ganedit.models.registry import load_pretrained, save_pretrained
from ganedit.models.sources import generator_identity
from ganedit.models.stylegan2 import Generator
from ganedit.utils.context import RunContext
from ganedit.utils.images import to_uint8
from tiny_encoder import TINY_ENCODER
from tolerance import assert_f32_close

QUIET = RunContext(progress=False)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny_generator(folder: Path, seed: int) -> str:
    torch.manual_seed(seed)
    g = Generator(16, style_dim=16, n_mlp=2, channel_max=16)
    g.update_w_avg(n=256, generator=torch.Generator().manual_seed(0))
    save_pretrained(g, folder)
    return str(folder)


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    return _tiny_generator(tmp_path_factory.mktemp("gen") / "tiny", seed=0)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """A folder of 4 world renders: a fixed set the encoder can learn within a few steps."""
    folder = tmp_path_factory.mktemp("faces")
    for i, image in enumerate(to_uint8(world_images(5, 0, 4, 16))):
        Image.fromarray(image).save(folder / f"{i}.png")
    return str(folder)


def _cfg(gen, **kw):
    base = dict(generator=gen, steps=8, batch_size=4, lr=1e-3, perceptual=0.0, identity=0.0)
    base.update(progressive_start=2, progressive_every=2, d_reg_every=2, encoder=TINY_ENCODER)
    base.update(checkpoint_every=4, sample_every=4, log_every=1)
    return EncoderTrainConfig(**{**base, **kw})


def _stats(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]


def _state(folder: Path) -> dict:
    return load_pretrained(folder).state_dict()


def test_the_loss_falls_on_a_fixed_set_of_images(gen, faces, tmp_path):
    cfg = _cfg(
        gen,
        data=faces,
        synthetic_fraction=0.0,
        steps=30,
        adversarial=0.0,
        progressive_start=10,
        progressive_every=5,
    )
    train_encoder(cfg, tmp_path / "run", ctx=QUIET)
    stats = _stats(tmp_path / "run")
    assert [s["step"] for s in stats] == list(range(1, 31))
    for record in stats:
        assert {"stage", "pixel", "delta_reg", "total", "seconds"} <= set(record)
        assert all(np.isfinite(v) for v in record.values())
    totals = [s["total"] for s in stats]
    assert np.mean(totals[-5:]) < 0.7 * np.mean(totals[:5]), totals


def test_offsets_start_at_zero_and_switch_on_with_the_schedule(gen):
    cfg = _cfg(gen, progressive_start=3, progressive_every=2)
    assert [stage_at(cfg, t, 6) for t in range(13)] == [0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    run = setup_encoder_training(cfg)
    enc = run.encoder
    assert torch.equal(enc.latent_avg, run.source.generator.w_avg)
    assert not any(p.requires_grad for p in run.source.generator.parameters())
    assert all(isinstance(b, float) for b in run.optim.param_groups[0]["betas"])
    images = world_images(9, 0, 3, 16)
    for t in range(8):
        stats = encoder_step(run)
        stage = stats["stage"]
        assert stage == stage_at(cfg, t, 6)
        heads = [h.linear for h in enc.styles[1:]]
        for i, head in enumerate(heads, start=1):
            zero = torch.count_nonzero(head.weight) == 0 and torch.count_nonzero(head.bias) == 0
            assert zero == (i > stage), (t, i, stage)  # on from its step, untouched before
        enc.progressive_stage, mode = enc.num_ws - 1, enc.training
        with torch.no_grad():
            _, deltas = enc.eval().w0_and_deltas(images)
        enc.train(mode)
        assert torch.count_nonzero(deltas[:, stage:]) == 0  # rows above the stage: exactly 0


def test_resume_continues_exactly_as_an_uninterrupted_run(gen, tmp_path, monkeypatch):
    cfg = _cfg(gen, checkpoint_every=3)
    full = train_encoder(cfg, tmp_path / "full", ctx=QUIET)
    # N/2 steps, then the same command extended to N.
    half = EncoderTrainConfig(**{**cfg.to_dict(), "steps": 4})
    train_encoder(half, tmp_path / "halves", ctx=QUIET)
    halves = train_encoder(cfg, tmp_path / "halves", ctx=QUIET)
    # A crash after the step-6 checkpoint: the rerun continues from step 6.
    original = te.encoder_step

    def crash_at_7(run):
        if run.step == 7:
            raise KeyboardInterrupt
        return original(run)

    monkeypatch.setattr(te, "encoder_step", crash_at_7)
    with pytest.raises(KeyboardInterrupt):
        train_encoder(cfg, tmp_path / "crashed", ctx=QUIET)
    monkeypatch.setattr(te, "encoder_step", original)
    crashed = train_encoder(cfg, tmp_path / "crashed", ctx=QUIET)
    reference = _state(full)
    for other in (halves, crashed):
        state = _state(other)
        for key, value in reference.items():
            assert_f32_close(state[key], value)
    for name in ("halves", "crashed"):  # every step logged once, as the uninterrupted run did
        stats = _stats(tmp_path / name)
        assert [s["step"] for s in stats] == list(range(1, 9))
        np.testing.assert_allclose(
            [s["total"] for s in stats], [s["total"] for s in _stats(tmp_path / "full")], rtol=1e-5
        )


def test_a_changed_config_or_generator_is_refused_on_resume(gen, tmp_path):
    cfg = _cfg(gen, steps=2)
    train_encoder(cfg, tmp_path / "run", ctx=QUIET)
    written = (tmp_path / "run" / "config.json").read_text()
    changed = EncoderTrainConfig(**{**cfg.to_dict(), "lr": 2e-3, "steps": 3})
    with pytest.raises(UserInputError, match="config of the run"):
        train_encoder(changed, tmp_path / "run", ctx=QUIET)
    other = _tiny_generator(tmp_path / "other", seed=1)
    with pytest.raises(UserInputError, match="generator the run"):
        train_encoder(_cfg(other, steps=3), tmp_path / "run", ctx=QUIET)
    assert (tmp_path / "run" / "config.json").read_text() == written  # nothing rewritten


def test_run_folder_conventions_and_the_encoder_folder(gen, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    cfg = _cfg(gen, steps=2, checkpoint_every=2, sample_every=2)
    for overwrite in (False, True):
        with pytest.raises(UserInputError, match="ganedit"):
            train_encoder(cfg, foreign, ctx=RunContext(progress=False, overwrite=overwrite))
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]

    out = train_encoder(cfg, tmp_path / "run", ctx=QUIET)
    with pytest.raises(UserInputError, match="--overwrite"):
        train_encoder(cfg, tmp_path / "run", resume=False, ctx=QUIET)
    train_encoder(cfg, tmp_path / "run", ctx=RunContext(progress=False, overwrite=True))  # afresh
    assert [s["step"] for s in _stats(tmp_path / "run")] == [1, 2]
    assert (tmp_path / "run" / "samples" / "0000002.png").is_file()

    encoder = load_pretrained(out)
    assert isinstance(encoder, Encoder4Editing) and encoder.num_ws == 6
    saved = json.loads((out / "config.json").read_text())
    assert saved["generator"] == generator_identity(gen)
    assert saved["steps"] == 2 and saved["train_config"]["encoder"]["w_dim"] == 16
    resolved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert EncoderTrainConfig.from_dict(resolved).encoder == encoder.config
    marker = json.loads((tmp_path / "run" / ".ganedit.json").read_text())
    assert marker["what"] == "train-encoder"


def test_discriminator_on_and_off_and_seeded_determinism(gen, tmp_path):
    before = torch.random.get_rng_state()
    cfg = _cfg(gen, steps=4, checkpoint_every=4)
    first = train_encoder(cfg, tmp_path / "a", ctx=QUIET)
    second = train_encoder(cfg, tmp_path / "b", ctx=QUIET)
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's RNG untouched
    a, b = _state(first), _state(second)
    assert all(torch.equal(a[k], b[k]) for k in a)
    stats = _stats(tmp_path / "a")
    assert all("d_loss" in s and "adversarial" in s for s in stats)
    assert sum("r1" in s for s in stats) == 2  # steps 0 and 2 (d_reg_every 2)
    assert (tmp_path / "a" / "checkpoint" / "discriminator.safetensors").is_file()

    train_encoder(_cfg(gen, steps=2, adversarial=0.0), tmp_path / "off", ctx=QUIET)
    assert not any("d_loss" in s or "adversarial" in s for s in _stats(tmp_path / "off"))
    assert not (tmp_path / "off" / "checkpoint" / "discriminator.safetensors").exists()


def test_perceptual_and_identity_terms_through_the_shipped_networks(gen, tmp_path):
    cfg = _cfg(gen, steps=2, perceptual=0.8, identity=0.5, adversarial=0.0)
    train_encoder(cfg, tmp_path / "run", ctx=QUIET)
    for record in _stats(tmp_path / "run"):
        assert record["perceptual"] > 0 and record["identity"] >= 0
        assert np.isfinite(record["perceptual"]) and np.isfinite(record["identity"])


def test_encode_images_is_batched_and_leaves_the_mode_alone(gen):
    run = setup_encoder_training(_cfg(gen))
    for _ in range(2):
        encoder_step(run)
    enc = run.encoder.train()
    images = world_images(11, 0, 5, 16)
    ws = encode_images(enc, images, batch_size=2)
    assert enc.training and ws.shape == (5, 6, 16) and ws.device.type == "cpu"
    with torch.no_grad():
        expected = enc.eval()(images)
    assert_f32_close(ws, expected)
    assert_f32_close(encode_images(enc, images), expected)
    with pytest.raises(UserInputError, match="float images"):
        encode_images(enc, images[0])


@pytest.mark.parametrize(
    "change, match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"synthetic_fraction": 1.5}, "synthetic_fraction"),
        ({"perceptual_net": "vgg"}, "perceptual_net"),
        ({"encoder": {"widths": 3}}, "unknown"),
        ({"lr": float("nan")}, "lr"),
        ({"world": "utopia"}, "preset name"),
        ({"world": "balanced", "data": "faces/"}, "only for world renders"),
    ],
)
def test_config_values_are_checked(gen, change, match):
    with pytest.raises(UserInputError, match=match):
        _cfg(gen, **change)


def test_the_renders_come_from_the_chosen_world(gen, monkeypatch):
    """--preset balanced: the real part of each batch is rendered from that world."""
    from ganedit.world.config import load_world_config
    from ganedit.world.factors import sample_factors

    seen = []
    real = te.sample_factors

    def spy(config, seed, start, n):
        seen.append(config.name)
        return real(config, seed, start, n)

    monkeypatch.setattr(te, "sample_factors", spy)
    run = setup_encoder_training(_cfg(gen, world="balanced", data_seed=3), torch.device("cpu"))
    encoder_step(run)
    assert seen and set(seen) == {"balanced"}
    balanced = sample_factors(load_world_config("balanced"), 3, 0, 400)
    celeba = sample_factors(load_world_config("celeba"), 3, 0, 400)
    share = {k: f.columns["glasses_label"].mean() for k, f in (("b", balanced), ("c", celeba))}
    assert share["b"] > 0.4 > 0.15 > share["c"]  # the tails as often as the core


def test_an_encoder_of_another_width_is_refused(gen):
    with pytest.raises(UserInputError, match="w_dim 16"):
        setup_encoder_training(_cfg(gen, encoder={**TINY_ENCODER, "w_dim": 32}))


@pytest.mark.slow
def test_two_processes_through_torchrun_keep_identical_weights(gen, tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(
        "import json, sys\n"
        "import ganedit.inversion.train_encoder as te\n"
        "from ganedit.utils.context import RunContext\n"
        "from ganedit.utils.distributed import world_info\n"
        "runs = []\n"
        "step = te.encoder_step\n"
        "te.encoder_step = lambda run: runs.append(run) or step(run)\n"
        "te.train_encoder(te.EncoderTrainConfig(**json.loads(sys.argv[1])), sys.argv[2],"
        " ctx=RunContext(progress=False))\n"
        "total = sum(v.double().sum().item() for v in runs[-1].encoder.state_dict().values())\n"
        "open(f'{sys.argv[3]}/checksum.{world_info()[0]}', 'w').write(repr(total))\n"
    )
    cfg = _cfg(gen, steps=4, checkpoint_every=2).to_dict()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += [str(script), json.dumps(cfg), str(tmp_path / "ddp"), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # One file per process: their stdout lines interleave under torchrun.
    sums = {rank: (tmp_path / f"checksum.{rank}").read_text() for rank in (0, 1)}
    assert sums[0] == sums[1]  # gradients and BN averaged
    assert [s["step"] for s in _stats(tmp_path / "ddp")] == [1, 2, 3, 4]  # process 0 alone
    assert torch.isfinite(
        encode_images(load_pretrained(tmp_path / "ddp" / "encoder"), world_images(3, 0, 2, 16))
    ).all()
