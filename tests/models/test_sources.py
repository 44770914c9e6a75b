import importlib.util

import pytest
import torch
from typer.testing import CliRunner

from ganedit.cli import app
from ganedit.errors import UserInputError
from ganedit.models.registry import save_pretrained
from ganedit.models.sources import load_generator, sample_z
from ganedit.models.stylegan2 import Generator, export_rosinality_checkpoint
from tolerance import assert_f32_close


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    torch.manual_seed(0)
    g = Generator(16, style_dim=16, n_mlp=2, channel_max=16).eval()
    g.update_w_avg(n=256, generator=torch.Generator().manual_seed(0))
    folder = tmp_path_factory.mktemp("g") / "tiny"
    save_pretrained(g, folder)
    export_rosinality_checkpoint(folder.parent / "tiny.pt", g)
    return folder


def test_sample_z_row_depends_only_on_seed_and_index():
    a = sample_z(10, 8, seed=3)
    torch.testing.assert_close(a[4:], sample_z(6, 8, seed=3, start=4), rtol=0, atol=0)
    assert not torch.equal(a, sample_z(10, 8, seed=4))
    big = sample_z(20000, 4, seed=0)
    assert abs(big.mean()) < 0.02 and abs(big.std() - 1) < 0.02


def test_folder_and_rosinality_sources_give_the_same_images(tiny_folder):
    ours = load_generator(tiny_folder)
    theirs = load_generator(tiny_folder.parent / "tiny.pt")
    assert ours.spaces == ("z", "w", "ws") and ours.z_dim == 16 and ours.resolution == 16
    z = ours.sample_z(5, seed=1)
    a, b = ours.synthesize(z), theirs.synthesize(z)
    assert_f32_close(a, b)
    assert a.shape == (5, 3, 16, 16) and a.abs().max() <= 1


def test_spaces_agree_and_batches_do_not_matter(tiny_folder):
    source = load_generator(tiny_folder)
    z = source.sample_z(6, seed=2)
    ws = source.to_ws(z, "z")
    w = ws[:, 0]
    from_z = source.synthesize(z, "z", batch_size=6)
    # Other batch sizes run other kernels: equal to float32 round-off, not bit for bit.
    assert_f32_close(source.synthesize(w, "w", batch_size=4), from_z)
    assert_f32_close(source.synthesize(ws, "ws", batch_size=1), from_z)
    with pytest.raises(UserInputError, match="latent space"):
        source.synthesize(z, "wp")


def test_unknown_generator_names_are_user_errors(tmp_path):
    with pytest.raises(UserInputError, match="expected a generator: world64"):
        load_generator("stylegan9")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserInputError):
        load_generator(bad)


def test_sample_command_writes_a_grid(tiny_folder, tmp_path):
    result = CliRunner().invoke(
        app,
        ["sample", "--generator", str(tiny_folder), "--n", "4", "--out", str(tmp_path / "g.png")],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "g.png").stat().st_size > 100 and (tmp_path / "g.png.json").is_file()


@pytest.mark.skipif(
    importlib.util.find_spec("gan_face_generate") is None, reason="gan-face-generate not installed"
)
def test_dcgan_digiface_adapter():
    source = load_generator("dcgan-digiface")
    assert source.spaces == ("z",) and source.z_dim == 100
    images = source.synthesize(source.sample_z(3, seed=0))
    assert images.shape == (3, 3, 64, 64) and images.std() > 0.1
    torch.testing.assert_close(
        images[1:], source.synthesize(source.sample_z(3, seed=0)[1:]), rtol=0, atol=1e-5
    )


def test_evaluate_generator_command(tiny_folder, tmp_path):
    import json

    args = [
        "evaluate-generator",
        "--generator",
        str(tiny_folder),
        "--n",
        "40",
        "--n-fd",
        "30",
        "--out",
        str(tmp_path / "r.json"),
        "--no-progress",
    ]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["frechet_distance"] > report["frechet_distance_floor"] >= 0
    assert 0 <= report["share_confident_all"] <= 1 and report["n"] == 40
    assert set(report["world_exact"]["marginals"]) == {"smile", "gender", "glasses", "age"}
    # The labeler reads world renders far better than a random tiny generator's images.
    assert report["renders_share_confident"]["all"] > report["share_confident"]["all"]
    assert report["share_confident"]["all"] == report["share_confident_all"]
    assert 0 <= report["labeler_floor_correlation_gap"] <= 2
    d = report["diversity"]  # identity over at most -n samples; renders are diverse
    assert d["n_identity"] == 40 and "modes" not in d
    assert d["renders_identity_cosine"] < 0.2 and -1 <= d["identity_cosine"] <= 1
    assert 0 <= d["precision_recall"]["recall"] <= d["precision_recall_floor"]["recall"]
    assert "diversity: mean pairwise identity cosine" in result.output


def test_render_is_the_differentiable_unclamped_path(tiny_folder):
    source = load_generator(tiny_folder)
    w = source.to_w(source.sample_z(3, seed=5)).requires_grad_(True)
    images = source.render(w, "w")
    assert images.requires_grad and images.shape == (3, 3, 16, 16)
    assert_f32_close(images.detach().clamp(-1, 1), source.synthesize(w.detach(), "w"))
    images.square().sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0
    # The mapping is differentiated too when rendering from z.
    z = source.sample_z(2, seed=6).requires_grad_(True)
    source.render(z, "z").sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_explicit_noise_maps(tiny_folder):
    source = load_generator(tiny_folder)
    with torch.no_grad():  # fresh generators ignore their noise (weights start at 0)
        for name, p in source.generator.named_parameters():
            if name.endswith("noise.weight"):
                p.fill_(0.5)
    w = source.to_w(source.sample_z(2, seed=7))
    const = source.make_noise(2, "const")
    assert [tuple(t.shape[2:]) for t in const] == [s[2:] for s in source.generator.noise_shapes()]
    assert_f32_close(source.render(w, "w", noise=const), source.render(w, "w"))
    first = source.make_noise(2, "random", torch.Generator().manual_seed(1))
    again = source.make_noise(2, "random", torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    noisy = source.render(w, "w", noise=first)
    assert not torch.allclose(noisy, source.render(w, "w"))
    # Noise maps can be optimised: gradients reach them.
    maps = [t.requires_grad_(True) for t in first]
    source.render(w, "w", noise=maps).sum().backward()
    assert all(t.grad is not None for t in maps)
    with pytest.raises(UserInputError, match="noise maps"):
        source.render(w, "w", noise=first[:-1])
    with pytest.raises(UserInputError, match="noise maps"):
        source.render(w, "w", noise=source.make_noise(3))
