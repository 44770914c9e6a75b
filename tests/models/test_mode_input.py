"""Self-conditioned StyleGAN2 (SC-GAN): the mode input and the discriminator's mode head."""

import pytest
import torch

from ganedit.models.modes import mode_vector
from ganedit.models.registry import load_pretrained, save_pretrained
from ganedit.models.stylegan2 import Discriminator, Generator
from tolerance import assert_f32_close

TINY = dict(size=16, style_dim=16, n_mlp=2, channel_max=16)


def _pretrained_and_conditional(attributes):
    torch.manual_seed(0)
    plain = Generator(**TINY).eval()
    with torch.no_grad():
        for b in plain.noises.buffers():
            b.normal_()
    conditional = Generator(**TINY, mode_attributes=attributes).eval()
    missing, unexpected = conditional.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["input.mode_offsets"] and unexpected == []
    return plain, conditional


@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_offset_initialisation_reproduces_the_pretrained_generator_for_every_mode(impl):
    plain, conditional = _pretrained_and_conditional(["smile", "glasses", "yaw"])
    ws = plain.mapping(torch.randn(6, 16, generator=torch.Generator().manual_seed(1)))
    t = torch.rand(6, 3, generator=torch.Generator().manual_seed(2))
    t[0] = 0.0
    t[1] = 1.0
    with torch.no_grad():
        expected = plain.synthesis(ws, impl=impl)
        for form in (True, False):  # either form of the vector, extremes included
            got = conditional.synthesis(ws, impl=impl, modes=mode_vector(t, form))
            assert torch.equal(got, expected)
        assert torch.equal(conditional.synthesis(ws, impl=impl), expected)  # neutral


def test_fast_and_reference_paths_agree_once_modes_differ():
    _, conditional = _pretrained_and_conditional(["smile", "age"])
    with torch.no_grad():
        conditional.input.mode_offsets.normal_(generator=torch.Generator().manual_seed(3))
    ws = conditional.mapping(torch.randn(5, 16, generator=torch.Generator().manual_seed(4)))
    modes = mode_vector(torch.rand(5, 2, generator=torch.Generator().manual_seed(5)), True)
    with torch.no_grad():
        ref = conditional.synthesis(ws, impl="reference", modes=modes)
        fast = conditional.synthesis(ws, impl="fast", modes=modes)
        neutral = conditional.synthesis(ws, impl="reference")
    assert_f32_close(fast, ref)
    assert (ref - neutral).abs().max() > 1e-2  # the modes now change the image


def test_copy_initialisation_scales_the_input_as_the_reference_does():
    _, conditional = _pretrained_and_conditional(["smile", "glasses", "yaw"])
    conditional.input.copy_base_into_modes()
    t = torch.tensor([[0.0, 0.5, 0.9], [0.5, 0.5, 0.5]])
    modes = mode_vector(t, for_generator=True)
    start = conditional.input(modes)
    base = conditional.input.input
    scale = 1 + (2 * t - 1).abs().sum(1)  # 1 + sum |2t - 1|: 2.8 and 1
    assert_f32_close(start, scale[:, None, None, None] * base)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_any_number_of_attributes_builds_and_trains(k):
    names = [f"a{i}" for i in range(k)]
    g = Generator(**TINY, mode_attributes=names)
    d = Discriminator(16, channel_max=16, num_modes=g.num_modes)
    assert g.num_modes == 1 + 3 * k and g.input.mode_offsets.shape[0] == 3 * k
    modes = mode_vector(torch.rand(4, k, generator=torch.Generator().manual_seed(k)), True)
    images = g(torch.randn(4, 16), modes=modes)
    logits, mode_logits = d.forward_with_modes(images)
    assert logits.shape == (4, 1) and mode_logits.shape == (4, g.num_modes)
    (logits.sum() + mode_logits.sum()).backward()
    assert g.input.mode_offsets.grad.abs().sum() > 0


def test_modes_are_checked():
    plain, conditional = _pretrained_and_conditional(["smile"])
    ws = plain.mapping(torch.randn(2, 16))
    with pytest.raises(ValueError, match="modes of shape"):
        conditional.synthesis(ws, modes=torch.ones(2, 7))
    with pytest.raises(ValueError, match="not self-conditioned"):
        plain.synthesis(ws, modes=torch.ones(2, 4))
    with pytest.raises(ValueError, match="mode head"):
        Discriminator(16, channel_max=16).forward_with_modes(torch.zeros(4, 3, 16, 16))


def test_self_conditioned_models_save_and_load(tmp_path):
    _, conditional = _pretrained_and_conditional(["smile", "yaw"])
    with torch.no_grad():
        conditional.input.mode_offsets.normal_()
    save_pretrained(conditional, tmp_path / "g")
    loaded = load_pretrained(tmp_path / "g")
    assert loaded.mode_attributes == ["smile", "yaw"]
    modes = mode_vector(torch.tensor([[0.1, 0.8]]), True)
    ws = conditional.mapping(torch.randn(1, 16))
    with torch.no_grad():
        assert torch.equal(
            loaded.synthesis(ws, modes=modes), conditional.synthesis(ws, modes=modes)
        )
    d = Discriminator(16, channel_max=16, num_modes=7)
    save_pretrained(d, tmp_path / "d")
    assert load_pretrained(tmp_path / "d").final_class[1].weight.shape[0] == 7


def test_sc_gan_layout_round_trip(tmp_path):
    from ganedit.models.stylegan2.convert import (
        export_rosinality_checkpoint,
        load_rosinality_checkpoint,
    )

    _, g = _pretrained_and_conditional(["glasses", "age", "yaw"])
    with torch.no_grad():
        g.input.mode_offsets.normal_(generator=torch.Generator().manual_seed(6))
    d = Discriminator(16, channel_max=16, num_modes=g.num_modes)
    path = export_rosinality_checkpoint(tmp_path / "sc.pt", g, d=d)
    raw = torch.load(path, weights_only=True)
    multi = raw["g_ema"]["input.multiinput"]
    assert multi.shape == (1, 16, 4, 4, 10) and "input.mode_offsets" not in raw["g_ema"]
    assert {"final_class.0.weight", "final_class.1.weight"} <= set(raw["d"])
    # the reference's input: the sum of every mode's constant weighted by the mode vector
    modes = mode_vector(torch.rand(3, 3, generator=torch.Generator().manual_seed(7)), True)
    assert_f32_close(g.input(modes), torch.einsum("nm,chwm->nchw", modes, multi[0]))

    back = load_rosinality_checkpoint(path, mode_attributes=["glasses", "age", "yaw"])
    g2, d2 = back["g_ema"], back["d"]
    assert g2.mode_attributes == ["glasses", "age", "yaw"] and d2.num_modes == 10
    ws = g.mapping(torch.randn(3, 16))
    with torch.no_grad():
        assert torch.equal(g2.synthesis(ws, modes=modes), g.synthesis(ws, modes=modes))
        images = g.synthesis(ws, modes=modes)
        assert torch.equal(d2.forward_with_modes(images)[1], d.forward_with_modes(images)[1])
    unnamed = load_rosinality_checkpoint(path)["g_ema"]
    assert unnamed.mode_attributes == ["attribute_1", "attribute_2", "attribute_3"]


def test_a_malformed_multi_input_is_refused(tmp_path):
    from ganedit.errors import UserInputError
    from ganedit.models.stylegan2.convert import load_rosinality_checkpoint

    plain = Generator(**TINY)
    state = plain.state_dict()
    state.pop("w_avg")
    state["input.multiinput"] = torch.zeros(1, 16, 4, 4, 5)  # 5 is not 1 + 3k
    state.pop("input.input")
    torch.save({"g_ema": state}, tmp_path / "bad.pt")
    with pytest.raises(UserInputError, match="1 \\+ 3k"):
        load_rosinality_checkpoint(tmp_path / "bad.pt")


@pytest.fixture
def sc_pt(tmp_path):
    """An SC-GAN `.pt` (its layout does not name the modes) of three attributes."""
    from ganedit.models.stylegan2.convert import export_rosinality_checkpoint

    _, g = _pretrained_and_conditional(["glasses", "age", "yaw"])
    with torch.no_grad():
        g.input.mode_offsets.normal_(generator=torch.Generator().manual_seed(6))
        g.update_w_avg(n=64, generator=torch.Generator().manual_seed(0))
    return export_rosinality_checkpoint(tmp_path / "sc.pt", g)


def test_mode_names_name_an_sc_gan_files_modes_on_the_command_line(capsys, tmp_path, sc_pt):
    import json

    from cli_run import ok

    named, unnamed = tmp_path / "named.png", tmp_path / "unnamed.png"
    ok(capsys, ["sample", "-g", sc_pt, "-n", 2, "-o", named, "--mode-names", "glasses,age,yaw",
                "--mode", "age=1"])  # fmt: skip
    ok(capsys, ["sample", "-g", sc_pt, "-n", 2, "-o", unnamed, "--mode", "attribute_2=1"])
    assert named.read_bytes() != b"" and _pixels(named) == _pixels(unnamed)  # same slot
    record = json.loads(next(tmp_path.glob("named.png*.json")).read_text())
    assert record["generator"]["mode_names"] == ["glasses", "age", "yaw"]
    assert (
        "mode_names"
        not in json.loads(next(tmp_path.glob("unnamed.png*.json")).read_text())["generator"]
    )


def _pixels(path):
    from PIL import Image

    return Image.open(path).tobytes()


@pytest.mark.parametrize(
    "names, generator, match",
    [
        ("glasses,age", "sc", "3 mode attribute names"),
        ("a,a,b", "sc", "distinct"),
        ("smile=1,b,c", "sc", "distinct comma-separated names"),
        ("a,b,c", "plain", "has no modes"),
    ],
)
def test_wrong_mode_names_are_one_line(capsys, tmp_path, sc_pt, names, generator, match):
    from cli_run import user_error
    from ganedit.models.stylegan2.convert import export_rosinality_checkpoint

    g = sc_pt
    if generator == "plain":
        plain, _ = _pretrained_and_conditional(["a"])
        plain.update_w_avg(n=16, generator=torch.Generator().manual_seed(0))
        g = export_rosinality_checkpoint(tmp_path / "plain.pt", plain)
    line = user_error(capsys, ["sample", "-g", g, "-n", 1, "-o", tmp_path / "x.png",
                               "--mode-names", names])  # fmt: skip
    assert match in line


def test_a_source_hands_out_its_mode_layout():
    from ganedit.errors import UserInputError
    from ganedit.models.modes import ModeLayout
    from ganedit.models.sources import StyleGANSource

    plain, conditional = _pretrained_and_conditional(["smile", "yaw"])
    sc = StyleGANSource(conditional, "sc")
    assert sc.mode_layout == ModeLayout(("smile", "yaw"))
    layout = sc.require_modes("--mode")
    at_yaw = layout.setting_vector(layout.parse(["yaw=1"]))
    assert torch.equal(at_yaw, sc.mode_layout.generator_vector(torch.tensor([[0.5, 1.0]])))
    other = StyleGANSource(plain, "plain")
    assert other.mode_layout is None
    with pytest.raises(UserInputError, match="generator for --mode, received plain"):
        other.require_modes("--mode")
    with pytest.raises(UserInputError, match="generator for modes, received plain"):
        other.synthesize(torch.zeros(1, 16), "w", modes=at_yaw)
