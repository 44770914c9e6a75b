"""NVIDIA's TensorFlow network pickles (PGGAN, StyleGAN, StyleGAN2): read without TensorFlow
and without running anything, rendered as the TensorFlow graph renders.

The pickles come from tests/tf_pkl_standin.py, which writes what NVIDIA's `Network.__getstate__`
writes under its real class paths, with random weights. The expected images come from
tests/tf_forward.py, the TensorFlow graphs written out from NVIDIA's build functions on the
pickled variables; it shares no code with ganedit's modules.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

import tf_forward
from ganedit.errors import DamagedInputError, UserInputError
from ganedit.models.sources import generator_identity, load_generator
from ganedit.models.tf_generators import convert_tf_pickle, load_tf_pickle
from ganedit.models.tf_pickle import first_global, is_tf_pickle, read_tf_pickle
from tf_pkl_standin import network_tuple, tf_names, write_tf_pickle

ATOL = 1e-4  # float32 renders against a float64 graph, images of magnitude ~1..10
VARIANTS = {
    "stylegan2-f": ("stylegan2", {}),
    "stylegan2-e": ("stylegan2", {"fmap_base": 32}),  # config E: half of F's fmap_base
    "stylegan1": ("stylegan1", {}),
    "stylegan1-fused": ("stylegan1", {"fused_scale": True}),
    "pggan-fused": ("pggan", {}),
    "pggan": ("pggan", {"fused_scale": False}),
}
ADVICE = ("safe_globals", "weights_only=False", "allow_pickle=True", "add_safe_globals")


def z_for(kind: str, n: int = 3, seed: int = 0) -> torch.Tensor:
    z_dim = 16 if kind == "pggan" else 8  # PGGAN's latent_size None: nf(0) = 16 here
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def reference(kind: str, net, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
    if kind == "stylegan2":
        return tf_forward.stylegan2(net, z, psi)
    if kind == "stylegan1":
        return tf_forward.stylegan1(net, z, psi, net.static_kwargs.get("truncation_cutoff", 8))
    return tf_forward.pggan(net, z)


@torch.no_grad()
def rendered(path, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
    return load_generator(path, truncation_psi=psi).render(z, "z").double()


def assert_images(actual: torch.Tensor, expected: torch.Tensor, size: int = 16) -> None:
    assert actual.shape == expected.shape == (len(actual), 3, size, size)
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=0)


def tf_pkl(tmp_path, variant: str = "stylegan2-f", protocol: int = 4, **changes):
    kind, base = VARIANTS[variant]
    nets = network_tuple(kind, **{**base, **changes})
    return write_tf_pickle(tmp_path / f"{variant}.pkl", nets, protocol), nets


# ------------------------------------------------------------------------------------------
# Rendering as TensorFlow renders


@pytest.mark.parametrize("protocol", [2, 3, 4])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_images_match_the_tensorflow_graph(tmp_path, variant, protocol):
    path, nets = tf_pkl(tmp_path, variant, protocol)
    kind = VARIANTS[variant][0]
    psi = 1.0 if kind == "pggan" else 0.7  # truncation towards the pickled dlatent_avg
    z = z_for(kind)
    assert_images(rendered(path, z, psi), reference(kind, nets[2], z, psi))


def test_stylegan1_auto_fused_scale_from_128_px(tmp_path):
    changes = {"resolution": 256, "fmap_base": 512, "fmap_max": 8}  # 8, 8, ..., 4 channels
    path, nets = tf_pkl(tmp_path, "stylegan1", **changes)
    with torch.no_grad():
        g = load_tf_pickle(path).generator
    assert [layer.kind for layer in g.synthesis.layers()[::2]] == ["const"] + ["up"] * 4 + [
        "fused"
    ] * 2
    z = z_for("stylegan1", n=2)
    assert_images(rendered(path, z, 0.7), tf_forward.stylegan1(nets[2], z, 0.7, 8), size=256)


def test_variables_are_read_exactly(tmp_path):
    path, nets = tf_pkl(tmp_path, "stylegan2-f")
    g, d, gs = read_tf_pickle(path)
    assert (g.name, d.name, gs.name) == ("G", "D", "Gs")
    assert gs.build_func_name == "G_main" and gs.origin == "dnnlib" and gs.version == 4
    synthesis = gs.components["synthesis"]
    for name, array in nets[2].components["synthesis"].variables.items():
        assert synthesis.variables[name].dtype == np.float32
        np.testing.assert_array_equal(synthesis.variables[name], array)
    assert synthesis.static_kwargs == nets[2].components["synthesis"].static_kwargs


def test_network_g_is_the_tuples_first(tmp_path):
    path, nets = tf_pkl(tmp_path, "stylegan1")
    z = z_for("stylegan1")
    with torch.no_grad():
        g = load_tf_pickle(path, network="G").generator
        images = g.render(g.truncate(g.mapping(z), 1.0, 8)).double()
    assert_images(images, tf_forward.stylegan1(nets[0], z))
    assert (images - tf_forward.stylegan1(nets[2], z)).abs().max() > 0.1


@pytest.mark.parametrize("variant", ["stylegan1", "stylegan2-f"])
def test_a_mapping_learning_rate_other_than_0_01(tmp_path, variant):
    path, nets = tf_pkl(tmp_path, variant, mapping_lrmul=0.03)
    kind = VARIANTS[variant][0]
    z = z_for(kind)
    assert_images(rendered(path, z), reference(kind, nets[2], z))
    out = tmp_path / ("net.pt" if kind == "stylegan2" else "net.pth")
    convert_tf_pickle(path, out)
    assert_images(rendered(out, z), reference(kind, nets[2], z))


def test_stylegan1_truncation_cutoff_comes_from_the_pickle(tmp_path):
    path, nets = tf_pkl(tmp_path, "stylegan1", truncation_cutoff=2)
    z = z_for("stylegan1")
    assert_images(rendered(path, z, 0.5), tf_forward.stylegan1(nets[2], z, 0.5, 2))
    with pytest.raises(UserInputError, match="truncation_cutoff 8"):
        convert_tf_pickle(path, tmp_path / "net.pth")


# ------------------------------------------------------------------------------------------
# Converting, and the sources


@pytest.mark.parametrize(
    "variant", ["stylegan2-f", "stylegan2-e", "stylegan1-fused", "pggan-fused"]
)
def test_converted_files_render_the_same(tmp_path, variant):
    path, nets = tf_pkl(tmp_path, variant)
    kind = VARIANTS[variant][0]
    out = tmp_path / ("net.pt" if kind == "stylegan2" else "net.pth")
    convert_tf_pickle(path, out)
    psi = 1.0 if kind == "pggan" else 0.7
    z = z_for(kind)
    assert_images(rendered(out, z, psi), reference(kind, nets[2], z, psi))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, out.name])


@pytest.mark.parametrize("kind", ["stylegan2", "stylegan1", "pggan"])
def test_the_suffix_must_fit_the_kind(tmp_path, kind):
    path = write_tf_pickle(tmp_path / "net.pkl", network_tuple(kind))
    wrong = tmp_path / ("net.pth" if kind == "stylegan2" else "net.pt")
    with pytest.raises(UserInputError, match=f"for a {kind} network"):
        convert_tf_pickle(path, wrong)
    assert not wrong.exists()


def test_sources_and_identity(tmp_path):
    from ganedit.models.pggan import PGGANSource
    from ganedit.models.sources import StyleGANSource
    from ganedit.models.stylegan1 import StyleGAN1Source

    kinds = {"stylegan2": StyleGANSource, "stylegan1": StyleGAN1Source, "pggan": PGGANSource}
    for kind, cls in kinds.items():
        path = write_tf_pickle(tmp_path / f"{kind}.pkl", network_tuple(kind))
        source = load_generator(path)
        assert type(source) is cls and source.resolution == 16
        assert source.identity == generator_identity(path)
    with pytest.raises(UserInputError, match="truncation psi 1 for the PGGAN"):
        load_generator(tmp_path / "pggan.pkl", truncation_psi=0.7)


def test_stylegan2_ada_pickles_still_go_to_their_reader(tmp_path):
    from nvidia_pkl_standin import write_tiny_nvidia_pkl

    ada = write_tiny_nvidia_pkl(tmp_path / "ada.pkl")
    assert first_global(ada) == ("torch_utils.persistence", "_reconstruct_persistent_obj")
    assert not is_tf_pickle(ada) and load_generator(ada).resolution == 16
    tf = write_tf_pickle(tmp_path / "tf.pkl", network_tuple("pggan"))
    assert first_global(tf) == ("tfutil", "Network") and is_tf_pickle(tf)
    assert not is_tf_pickle(tmp_path / "missing.pkl")


@pytest.mark.parametrize("kind", ["stylegan2", "stylegan1", "pggan"])
def test_cli_sample_convert_and_sample_again(tmp_path, capsys, kind):
    from PIL import Image

    from cli_run import ok, user_error

    path = write_tf_pickle(tmp_path / "tf.pkl", network_tuple(kind))
    out = tmp_path / ("net.pt" if kind == "stylegan2" else "net.pth")
    ok(capsys, ["sample", "-g", path, "-n", 4, "-o", tmp_path / "a.png"])
    assert "Gs of tf.pkl" in ok(capsys, ["convert", "-g", path, "-o", out])
    assert "pass --overwrite" in user_error(capsys, ["convert", "-g", path, "-o", out])
    ok(capsys, ["sample", "-g", out, "-n", 4, "-o", tmp_path / "b.png"])
    a, b = (np.asarray(Image.open(tmp_path / f"{n}.png"), dtype=int) for n in "ab")
    assert a.shape == b.shape and np.abs(a - b).max() <= 1  # uint8 rounding of equal renders
    assert a.std() > 5  # an image, not a blank
    line = user_error(capsys, ["convert", "-g", path, "-o", tmp_path / "net.npz"])
    assert ".npz" in line


@pytest.mark.parametrize(
    ("kind", "space"), [("stylegan2", "w"), ("stylegan1", "w"), ("pggan", "z")]
)
def test_generate_boundary_edit_on_a_tensorflow_pickle(tmp_path, capsys, kind, space):
    """The workflow of the issue's "done when": a bank of the pickle's codes, a direction
    learned on it, an edit rendered by the pickle; every step records the pickle's sha256."""
    import hashlib
    import json

    from cli_run import ok
    from ganedit.models.predictors import AttributeNet
    from ganedit.models.registry import save_pretrained

    torch.manual_seed(0)
    predictor = tmp_path / "pred"
    save_pretrained(AttributeNet("plain", width=8, hidden=8, image_size=16).eval(), predictor)
    path = write_tf_pickle(tmp_path / "tf.pkl", network_tuple(kind))
    bank = tmp_path / "bank.zarr"
    ok(capsys, ["generate", "-g", path, "-p", predictor, "-n", 96, "--seed", 1, "-o", bank,
                "--batch-size", 48, "--no-progress"])  # fmt: skip
    ok(capsys, ["boundary", "--method", "interfacegan", "-c", bank, "--space", space,
                "-a", "smile", "-n", 0.25, "-o", tmp_path / "smile.npy"])  # fmt: skip
    sidecar = json.loads((tmp_path / "smile.npy.json").read_text())
    assert hashlib.sha256(path.read_bytes()).hexdigest() in json.dumps(sidecar)
    ok(capsys, ["edit", "-b", tmp_path / "smile.npy", "-g", path, "--space", space,
                "-o", tmp_path / "edit", "-n", 2, "--steps", 3, "--no-progress"])  # fmt: skip
    edited = np.load(tmp_path / "edit" / "latents.npy")
    assert np.isfinite(edited).all() and (tmp_path / "edit" / "strip.png").stat().st_size > 100
    first, last = edited[:, 0], edited[:, -1]  # the ends of each strip differ along the direction
    assert np.abs(first - last).max() > 1e-3


# ------------------------------------------------------------------------------------------
# Nothing in the file runs; damage and foreign content are refused in one line


def armed_source(marker) -> str:
    return f"open({str(marker)!r}, 'w').write('ran')\n"


def test_build_module_src_is_never_run(tmp_path, capsys):
    from cli_run import ok

    marker = tmp_path / "marker"
    path = write_tf_pickle(
        tmp_path / "net.pkl", network_tuple("stylegan2", src=armed_source(marker))
    )
    record = read_tf_pickle(path)[2]
    assert record.build_module_src == armed_source(marker)
    load_tf_pickle(path)
    ok(capsys, ["sample", "-g", path, "-n", 2, "-o", tmp_path / "a.png"])
    convert_tf_pickle(path, tmp_path / "net.pt")
    assert not marker.exists()
    with tf_names():  # the fixture is armed: NVIDIA's way of loading it runs the source
        pickle.loads(path.read_bytes())
    assert marker.read_text() == "ran"


def refusal(path, error=UserInputError) -> str:
    with pytest.raises(error) as info:
        load_tf_pickle(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith("expected ")
    assert not any(word in message for word in ADVICE)
    return message


def with_variable(tmp_path, name: str, value, component: str = "synthesis", kind="stylegan2"):
    nets = network_tuple(kind)
    target = nets[2].components[component] if component else nets[2]
    target.variables[name] = value
    return write_tf_pickle(tmp_path / "net.pkl", nets)


class Evil:
    """Unpickling this runs a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class LyingArray:
    """numpy's own reduce of an array, its state claiming a far larger shape than its bytes."""

    def __reduce__(self):
        rebuild, args, state = np.zeros(4, np.float32).__reduce__()
        return rebuild, args, (state[0], (1000, 1000), *state[2:])


def test_an_unknown_global_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "marker"
    path = with_variable(tmp_path, "4x4/Conv/weight", Evil(marker))
    message = refusal(path)
    assert "system, which was not loaded" in message and not marker.exists()


def test_object_arrays_are_refused(tmp_path):
    path = with_variable(tmp_path, "4x4/Conv/weight", np.array([1.0, "x"], dtype=object))
    message = refusal(path)
    assert "numeric dtype" in message and "'O8'" in message


def test_an_array_shape_beyond_its_bytes_is_damage(tmp_path):
    path = with_variable(tmp_path, "4x4/Conv/weight", LyingArray())
    message = refusal(path, DamagedInputError)
    assert "4000000 bytes for an array of shape [1000, 1000]" in message and "16 bytes" in message


def test_non_finite_weights_are_damage(tmp_path):
    weight = network_tuple("stylegan2")[2].components["synthesis"].variables["4x4/Conv/weight"]
    path = with_variable(tmp_path, "4x4/Conv/weight", np.where(weight > 1, np.nan, weight))
    assert "finite values in 4x4/Conv/weight" in refusal(path, DamagedInputError)


def test_a_missing_variable_is_refused(tmp_path):
    nets = network_tuple("stylegan1")
    del nets[2].components["synthesis"].variables["8x8/Conv1/weight"]
    path = write_tf_pickle(tmp_path / "net.pkl", nets)
    assert "variable 8x8/Conv1/weight of shape [3, 3, 16, 16]" in refusal(path)


def test_an_extra_or_misshapen_variable_is_refused(tmp_path):
    path = with_variable(tmp_path, "4x4/Conv/extra", np.zeros(3, np.float32))
    assert "4x4/Conv/extra" in refusal(path)
    path = with_variable(tmp_path, "4x4/Conv/bias", np.zeros(3, np.float32))
    assert "4x4/Conv/bias of shape [16]" in refusal(path)


@pytest.mark.parametrize("keep", [0, 10, 2000])
def test_a_truncated_file_is_damage(tmp_path, keep):
    path, _ = tf_pkl(tmp_path, "pggan")
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(DamagedInputError):
        read_tf_pickle(path)


def test_a_pickle_of_other_content_is_refused(tmp_path):
    path = tmp_path / "net.pkl"
    with tf_names():
        path.write_bytes(pickle.dumps({"Gs": network_tuple("pggan")[2]}, protocol=4))
    assert "tuple (G, D, Gs)" in refusal(path)


def test_numpy_1_module_names_read_alike(tmp_path):
    path, nets = tf_pkl(tmp_path, "pggan", protocol=2)  # text GLOBALs: names may change length
    data = path.read_bytes()
    assert b"numpy._core.multiarray\n" in data
    path.write_bytes(data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    z = z_for("pggan")
    assert_images(rendered(path, z), tf_forward.pggan(nets[2], z))


@pytest.mark.parametrize(
    ("kind", "changes", "words"),
    [
        ("stylegan2", {"architecture": "resnet"}, "architecture 'skip'"),
        ("stylegan2", {"label_size": 4}, "conditional generators are not supported"),
        ("stylegan1", {"use_instance_norm": False}, "use_instance_norm True"),
        ("stylegan1", {"blur_filter": [1, 4, 6, 4, 1]}, "blur_filter"),
        ("pggan", {"use_pixelnorm": False}, "use_pixelnorm True"),
        ("pggan", {"num_channels": 1}, "num_channels 3"),
    ],
)
def test_settings_ganedit_cannot_reproduce_are_refused(tmp_path, kind, changes, words):
    path = write_tf_pickle(tmp_path / "net.pkl", network_tuple(kind, **changes))
    assert words in refusal(path)


def test_a_network_still_growing_is_refused(tmp_path):
    path = with_variable(tmp_path, "lod", np.float32(0.5), component=None, kind="pggan")
    assert "fully grown network (lod 0)" in refusal(path)


def test_an_unknown_build_function_is_refused(tmp_path):
    nets = network_tuple("stylegan2")
    nets[2].components["synthesis"].func = "G_synthesis_stylegan_revised"  # configs B-D
    path = write_tf_pickle(tmp_path / "net.pkl", nets)
    assert "by G_synthesis_stylegan2" in refusal(path)
    nets[2].func = "G_other"
    path = write_tf_pickle(tmp_path / "net.pkl", nets)
    assert "'G_other'" in refusal(path)


def test_the_cli_refuses_in_one_line(tmp_path, capsys):
    from cli_run import user_error

    marker = tmp_path / "marker"
    path = with_variable(tmp_path, "4x4/Conv/weight", Evil(marker))
    for args in (["sample", "-g", path, "-o", tmp_path / "a.png"],
                 ["convert", "-g", path, "-o", tmp_path / "a.pt"]):  # fmt: skip
        assert "system, which was not loaded" in user_error(capsys, args)
    assert not marker.exists() and not (tmp_path / "a.pt").exists()
