"""The e4e encoder: shapes, progressive offsets, official key names, checkpoint I/O."""

import argparse
import json
import logging

import numpy as np
import pytest
import torch

from ganedit.errors import DamagedInputError, UserInputError
from ganedit.models.encoder import (
    OFFICIAL_CONFIG,
    Encoder4Editing,
    load_e4e_checkpoint,
    load_latents_pt,
    save_e4e_checkpoint,
    save_latents_pt,
)
from ganedit.models.registry import load_pretrained, save_pretrained
from ganedit.models.stylegan2.networks import Generator
from tolerance import assert_f32_close

# The official layout (4 stages of IR-SE units [3, 4, 14, 3], 18 styles, 256 px input) at
# tiny widths: every key of the official model, with small shapes.
TINY_OFFICIAL = {
    **OFFICIAL_CONFIG,
    "w_dim": 32,
    "stage_channels": [8, 16, 32, 64],
    "style_channels": 32,
    "se_reduction": 8,
}
# A small 64 px encoder whose stages 1-2 and 3-4 have equal widths (boundaries not visible).
EQUAL_WIDTHS = {"stage_units": [1, 1, 2, 1], "stage_channels": [16, 16, 32, 32]}
SMALL = {"stage_units": [1, 1, 1, 1], "stage_channels": [16, 24, 32, 48], "style_channels": 32}

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def randomised(encoder: Encoder4Editing, seed: int = 0) -> Encoder4Editing:
    """Every parameter and buffer drawn afresh (offset heads included), BN statistics too."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in encoder.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            values = torch.randn(tensor.shape, generator=gen) * 0.3
            if name.endswith("running_var"):
                values = values.abs() + 0.5
            tensor.copy_(values)
    return encoder.eval()


def images(n: int, size: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=gen) * 2 - 1


def official_keys(units, num_ws, coarse_ind, middle_ind, coarse_convs) -> set[str]:
    """The state-dict names of e4e's `Encoder4Editing(50, 'ir_se')`, spelled out from the
    official module nesting (helpers.py / psp_encoders.py), independently of our module."""
    keys = {"input_layer.0.weight", "input_layer.2.weight", *(f"input_layer.1.{b}" for b in BN)}
    k = 0
    for stage, count in enumerate(units):
        for j in range(count):
            p = f"body.{k}."
            if stage > 0 and j == 0:  # the width changes: 1x1 conv + BN shortcut
                keys |= {p + "shortcut_layer.0.weight", *(p + f"shortcut_layer.1.{b}" for b in BN)}
            keys |= {p + f"res_layer.{m}.weight" for m in (1, 2, 3)}
            keys |= {p + f"res_layer.{m}.{b}" for m in (0, 4) for b in BN}
            keys |= {p + "res_layer.5.fc1.weight", p + "res_layer.5.fc2.weight"}
            k += 1
    for i in range(num_ws):
        convs = coarse_convs + (0 if i < coarse_ind else 1 if i < middle_ind else 2)
        keys |= {f"styles.{i}.convs.{2 * c}.{t}" for c in range(convs) for t in ("weight", "bias")}
        keys |= {f"styles.{i}.linear.weight", f"styles.{i}.linear.bias"}
    return keys | {f"latlayer{j}.{t}" for j in (1, 2) for t in ("weight", "bias")}


# ------------------------------------------------------------------------------------------
# Shapes and progressive offsets


def test_small_default_shapes_and_resizing():
    enc = Encoder4Editing().eval()
    assert (enc.image_size, enc.w_dim, enc.num_ws) == (64, 128, 10)
    with torch.no_grad():
        ws = enc(images(3, 64))
        w0, deltas = enc.w0_and_deltas(images(2, 128))  # resized inside
        c1, c2, c3 = enc.features(images(2, 64))
    assert ws.shape == (3, 10, 128) and ws.dtype == torch.float32
    assert w0.shape == (2, 128) and deltas.shape == (2, 9, 128)
    assert c1.shape == (2, 32, 16, 16) and c2.shape == (2, 64, 8, 8) and c3.shape == (2, 96, 4, 4)
    assert json.loads(json.dumps(enc.config)) == enc.config
    assert Encoder4Editing(**enc.config).config == enc.config


def test_tiny_official_layout_shapes():
    enc = randomised(Encoder4Editing(**TINY_OFFICIAL))
    with torch.no_grad():
        c1, c2, c3 = enc.features(images(2, 256))
        ws = enc(images(2, 256))
    assert (
        c1.shape == (2, 16, 64, 64) and c2.shape == (2, 32, 32, 32) and c3.shape == (2, 64, 16, 16)
    )
    assert ws.shape == (2, 18, 32)
    assert [len(enc.styles[i].convs) // 2 for i in (0, 2, 3, 6, 7, 17)] == [4, 4, 5, 5, 6, 6]


def test_fresh_encoder_has_zero_offsets_at_every_stage():
    enc = Encoder4Editing(**SMALL).eval()
    enc.latent_avg.normal_()
    x = images(3, 64)
    for stage in range(enc.num_ws):
        enc.progressive_stage = stage
        with torch.no_grad():
            w0, deltas = enc.w0_and_deltas(x)
            ws = enc(x)
        assert torch.equal(deltas, torch.zeros_like(deltas))
        assert torch.equal(ws, ws[:, :1].expand_as(ws))  # pure W: every row the same
        assert torch.equal(ws[:, 0], w0 + enc.latent_avg)


def test_masked_offsets_contribute_exactly_zero_after_random_weights():
    enc = randomised(Encoder4Editing(**SMALL))
    x = images(3, 64)
    with torch.no_grad():
        full = enc(x)
        for stage in range(enc.num_ws):
            enc.progressive_stage = stage
            w0, deltas = enc.w0_and_deltas(x)
            ws = enc(x)
            assert torch.equal(deltas[:, stage:], torch.zeros_like(deltas[:, stage:]))
            assert bool((deltas[:, :stage].abs().sum(-1) > 0).all())
            assert torch.equal(ws[:, stage + 1 :], ws[:, :1].expand_as(ws[:, stage + 1 :]))
            assert torch.equal(ws[:, : stage + 1], full[:, : stage + 1])
    assert torch.equal(ws, full)  # the last stage is every offset on, the default


def test_masked_offset_heads_get_no_gradient():
    enc = randomised(Encoder4Editing(**SMALL)).train()
    enc.progressive_stage = 4
    enc(images(2, 64)).square().sum().backward()
    assert enc.styles[4].linear.weight.grad is not None
    assert all(enc.styles[i].linear.weight.grad is None for i in range(5, enc.num_ws))


def test_compose_matches_forward_and_official_order():
    enc = randomised(Encoder4Editing(**SMALL))
    x = images(2, 64)
    with torch.no_grad():
        w0, deltas = enc.w0_and_deltas(x)
        ws = enc(x)
    assert torch.equal(enc.compose(w0, deltas), ws)
    assert torch.equal(ws[:, 3], (w0 + deltas[:, 2]) + enc.latent_avg)
    enc.start_from_latent_avg = False
    assert_f32_close(enc.compose(w0, deltas), ws - enc.latent_avg)


@pytest.mark.parametrize("stage", [-1, 10, 2.0, True])
def test_progressive_stage_out_of_range_is_refused(stage):
    with pytest.raises(UserInputError, match="progressive stage"):
        Encoder4Editing().progressive_stage = stage


@pytest.mark.parametrize(
    "kwargs",
    [
        {"image_size": 48},
        {"image_size": 2048},
        {"stage_units": [1, 1, 1]},
        {"coarse_ind": 8, "middle_ind": 7},
        {"middle_ind": 11},
        {"se_reduction": 32},
        {"start_from_latent_avg": 1},
    ],
)
def test_invalid_configs_are_user_errors(kwargs):
    with pytest.raises(UserInputError):
        Encoder4Editing(**kwargs)


def test_wrong_image_batches_are_refused():
    enc = Encoder4Editing()
    with pytest.raises(UserInputError, match=r"\[N, 3, H, W\]"):
        enc(torch.zeros(2, 1, 64, 64))


# ------------------------------------------------------------------------------------------
# Official key names


OFFICIAL_SHAPES = {
    "input_layer.0.weight": (64, 3, 3, 3),
    "input_layer.1.running_var": (64,),
    "input_layer.2.weight": (64,),
    "body.0.res_layer.1.weight": (64, 64, 3, 3),
    "body.0.res_layer.5.fc1.weight": (4, 64, 1, 1),
    "body.3.shortcut_layer.0.weight": (128, 64, 1, 1),
    "body.3.res_layer.0.weight": (64,),
    "body.3.res_layer.1.weight": (128, 64, 3, 3),
    "body.7.shortcut_layer.1.running_mean": (256,),
    "body.21.shortcut_layer.0.weight": (512, 256, 1, 1),
    "body.23.res_layer.4.weight": (512,),
    "body.23.res_layer.5.fc2.weight": (512, 32, 1, 1),
    "styles.0.convs.6.weight": (512, 512, 3, 3),
    "styles.3.convs.8.bias": (512,),
    "styles.17.convs.10.weight": (512, 512, 3, 3),
    "styles.17.linear.weight": (512, 512),
    "latlayer1.weight": (512, 256, 1, 1),
    "latlayer2.weight": (512, 128, 1, 1),
    "latlayer2.bias": (512,),
}
OFFICIAL_ABSENT = [
    "body.24.res_layer.1.weight",
    "body.0.shortcut_layer.0.weight",
    "body.4.shortcut_layer.0.weight",
    "styles.18.linear.weight",
    "styles.0.convs.8.weight",
    "styles.6.convs.10.weight",
    "styles.17.convs.12.weight",
]


def test_full_size_official_keys_and_shapes_on_meta():
    with torch.device("meta"):
        enc = Encoder4Editing(**OFFICIAL_CONFIG)
    shapes = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    assert shapes.pop("latent_avg") == (512,)  # ours: e4e keeps it beside the encoder
    assert set(shapes) == official_keys([3, 4, 14, 3], 18, 3, 7, 4)
    for name, shape in OFFICIAL_SHAPES.items():
        assert shapes[name] == shape, name
    assert not set(OFFICIAL_ABSENT) & set(shapes)
    assert sum(p.numel() for p in enc.parameters()) == 267_136_704


def test_tiny_width_official_layout_has_the_official_key_set():
    enc = Encoder4Editing(**TINY_OFFICIAL)
    keys = set(enc.state_dict()) - {"latent_avg"}
    assert keys == official_keys([3, 4, 14, 3], 18, 3, 7, 4)
    assert enc.state_dict()["body.21.shortcut_layer.0.weight"].shape == (64, 32, 1, 1)
    assert enc.state_dict()["styles.0.linear.weight"].shape == (32, 32)


def test_small_config_key_set_follows_the_same_naming():
    enc = Encoder4Editing()
    keys = set(enc.state_dict()) - {"latent_avg"}
    assert keys == official_keys([1, 2, 3, 1], 10, 3, 7, 2)


# ------------------------------------------------------------------------------------------
# e4e checkpoint layout


def test_e4e_export_import_round_trip_is_exact(tmp_path):
    enc = randomised(Encoder4Editing(**TINY_OFFICIAL))
    path = save_e4e_checkpoint(enc, tmp_path / "e4e.pt", opts={"lr": 1e-4, "batch_size": 8})
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert set(raw) == {"state_dict", "opts", "latent_avg"}
    assert all(k.startswith("encoder.") for k in raw["state_dict"])
    assert raw["latent_avg"].shape == (18, 32)
    assert json.loads(json.dumps(raw["opts"])) == raw["opts"]
    assert raw["opts"]["encoder_type"] == "Encoder4Editing" and raw["opts"]["stylegan_size"] == 1024

    loaded = load_e4e_checkpoint(path)
    x = images(2, 256)
    with torch.no_grad():
        assert torch.equal(loaded["encoder"](x), enc(x))
    assert loaded["encoder"].config == enc.config and loaded["opts"]["lr"] == 1e-4
    assert torch.equal(loaded["latent_avg"], enc.latent_avg)
    assert loaded["decoder"] is None and loaded["decoder_state"] == {}
    weight = loaded["encoder"].styles[3].linear.weight
    assert isinstance(weight, torch.nn.Parameter) and weight.requires_grad


def test_official_file_without_ganedit_config_infers_the_same_config(tmp_path):
    enc = randomised(Encoder4Editing(**TINY_OFFICIAL))
    ckpt = torch.load(save_e4e_checkpoint(enc, tmp_path / "a.pt"), weights_only=True)
    official_opts = {"encoder_type": "Encoder4Editing", "start_from_latent_avg": True}
    torch.save({**ckpt, "opts": official_opts, "global_step": 5}, tmp_path / "b.pt")
    loaded = load_e4e_checkpoint(tmp_path / "b.pt")["encoder"]
    assert loaded.config == enc.config
    x = images(1, 256)
    with torch.no_grad():
        assert torch.equal(loaded(x), enc(x))


def test_hidden_stage_boundaries_need_the_stored_config(tmp_path):
    enc = randomised(Encoder4Editing(**EQUAL_WIDTHS))
    path = save_e4e_checkpoint(enc, tmp_path / "a.pt")
    assert load_e4e_checkpoint(path)["encoder"].config == enc.config
    ckpt = torch.load(path, weights_only=True)
    torch.save({**ckpt, "opts": {}}, tmp_path / "b.pt")
    with pytest.raises(UserInputError, match="4 stages show"):
        load_e4e_checkpoint(tmp_path / "b.pt")


def test_decoder_is_converted_to_a_generator(tmp_path):
    enc = randomised(Encoder4Editing(**SMALL))
    g = Generator(8, style_dim=128, n_mlp=2, channel_max=16).eval()
    path = save_e4e_checkpoint(enc, tmp_path / "e4e.pt", decoder_state=g)
    loaded = load_e4e_checkpoint(path)
    decoder = loaded["decoder"]
    assert isinstance(decoder, Generator) and torch.equal(decoder.w_avg, enc.latent_avg)
    assert set(loaded["decoder_state"]) == set(g.state_dict()) - {"w_avg"}
    ws = torch.randn(2, g.num_ws, 128)
    with torch.no_grad():
        assert torch.equal(decoder.synthesis(ws), g.synthesis(ws))


def test_without_latent_avg_the_decoder_mean_w_is_used_as_e4e_does(tmp_path, caplog):
    """e4e's loader (a036381): no latent_avg but start_from_latent_avg -> the decoder's mean w
    of 10,000 samples; without a decoder there is nothing to compute it from."""
    enc = randomised(Encoder4Editing(**SMALL))
    g = Generator(8, style_dim=128, n_mlp=2, channel_max=16).eval()
    ckpt = torch.load(
        save_e4e_checkpoint(enc, tmp_path / "a.pt", decoder_state=g), weights_only=True
    )
    del ckpt["latent_avg"]
    torch.save(ckpt, tmp_path / "b.pt")
    with caplog.at_level(logging.WARNING):
        loaded = load_e4e_checkpoint(tmp_path / "b.pt", build_decoder=False)
    assert "no latent_avg" in caplog.text and loaded["decoder"] is None
    z = torch.randn(10000, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mean = g.style(z).double().mean(dim=0).float()
    assert_f32_close(loaded["latent_avg"], mean)
    assert torch.equal(loaded["encoder"].latent_avg, loaded["latent_avg"])
    again = load_e4e_checkpoint(tmp_path / "b.pt")
    assert torch.equal(again["latent_avg"], loaded["latent_avg"])
    assert torch.equal(again["decoder"].w_avg, loaded["latent_avg"])


def test_unconvertible_decoder_is_kept_raw_with_a_warning(tmp_path, caplog):
    enc = Encoder4Editing(**SMALL)
    strange = {"mapping.fc0.weight": torch.zeros(4, 4)}
    path = save_e4e_checkpoint(enc, tmp_path / "e4e.pt", decoder_state=strange)
    with caplog.at_level(logging.WARNING):
        loaded = load_e4e_checkpoint(path)
    assert loaded["decoder"] is None and set(loaded["decoder_state"]) == set(strange)
    assert "raw tensors" in caplog.text


class _CreatesFile:
    """Stands for any pickled object a checkpoint could smuggle in: loading it makes a file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _valid_checkpoint(tmp_path):
    return torch.load(
        save_e4e_checkpoint(Encoder4Editing(**SMALL), tmp_path / "ok.pt"), weights_only=True
    )


def test_pickled_objects_are_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({**_valid_checkpoint(tmp_path), "extra": _CreatesFile(marker)}, path)
    with pytest.raises(UserInputError, match="pickled Python objects") as err:
        load_e4e_checkpoint(path)
    assert "\n" not in str(err.value) and not marker.exists()


def test_opts_as_a_namespace_is_refused(tmp_path):
    path = tmp_path / "ns.pt"
    torch.save({**_valid_checkpoint(tmp_path), "opts": argparse.Namespace(a=1)}, path)
    with pytest.raises(UserInputError, match="plain dict.*received a Namespace"):
        load_e4e_checkpoint(path)


@pytest.mark.parametrize("damage", ["empty", "truncated", "random"])
def test_damaged_files_are_damaged_input(tmp_path, damage):
    good = save_e4e_checkpoint(Encoder4Editing(**SMALL), tmp_path / "ok.pt").read_bytes()
    data = {
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "random": np.random.default_rng(0).bytes(4096),
    }[damage]
    path = tmp_path / "bad.pt"
    path.write_bytes(data)
    with pytest.raises(DamagedInputError) as err:
        load_e4e_checkpoint(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda c: {"opts": c["opts"]}, "with a `state_dict` entry"),
        (lambda c: c["latent_avg"], "received a tensor"),
        (lambda c: {**c, "opts": {"encoder_type": "GradualStyleEncoder"}}, "GradualStyleEncoder"),
        (lambda c: {**c, "state_dict": {"decoder.x": torch.zeros(1)}}, "encoder.`-prefixed"),
        (lambda c: {**c, "state_dict": [1, 2]}, "dict of named tensors"),
        (lambda c: {k: v for k, v in c.items() if k != "latent_avg"}, "latent_avg"),
        (lambda c: {**c, "latent_avg": torch.randn(10, 128)}, "all equal"),
        (lambda c: {**c, "latent_avg": torch.zeros(7)}, "latent_avg"),
        (
            lambda c: {
                **c,
                "state_dict": {**c["state_dict"], "encoder.styles.0.linear.weight": torch.zeros(5)},
            },
            "other ranks",
        ),
    ],
)
def test_other_layouts_get_one_line_user_errors(tmp_path, mutate, match):
    path = tmp_path / "other.pt"
    torch.save(mutate(_valid_checkpoint(tmp_path)), path)
    with pytest.raises(UserInputError, match=match) as err:
        load_e4e_checkpoint(path)
    assert "\n" not in str(err.value)


def test_weights_of_another_shape_and_non_finite_weights_are_refused(tmp_path):
    ckpt = _valid_checkpoint(tmp_path)
    state = dict(ckpt["state_dict"])
    state["encoder.latlayer1.weight"] = torch.zeros(48, 7, 1, 1)
    torch.save({**ckpt, "state_dict": state}, tmp_path / "shape.pt")
    with pytest.raises(UserInputError, match="latlayer1.weight"):
        load_e4e_checkpoint(tmp_path / "shape.pt")
    state = dict(ckpt["state_dict"])
    state["encoder.styles.0.linear.weight"] = torch.full_like(
        state["encoder.styles.0.linear.weight"], float("nan")
    )
    torch.save({**ckpt, "state_dict": state}, tmp_path / "nan.pt")
    with pytest.raises(DamagedInputError, match="finite"):
        load_e4e_checkpoint(tmp_path / "nan.pt")


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserInputError, match="no such file"):
        load_e4e_checkpoint(tmp_path / "missing.pt")


def test_latents_pt_round_trip(tmp_path):
    ws = torch.randn(5, 10, 128)
    path = save_latents_pt(ws[1:3], tmp_path / "latents.pt")
    raw = torch.load(path, weights_only=True)
    assert isinstance(raw, torch.Tensor) and torch.equal(raw, ws[1:3])
    assert path.stat().st_size < ws.numel() * 4  # the view alone, not its whole storage
    assert torch.equal(load_latents_pt(path), ws[1:3])
    with pytest.raises(UserInputError, match=r"\[N, num_ws, w_dim\]"):
        save_latents_pt(torch.zeros(3, 4), tmp_path / "flat.pt")
    torch.save({"codes": ws}, tmp_path / "dict.pt")
    with pytest.raises(UserInputError, match="received 'dict'"):
        load_latents_pt(tmp_path / "dict.pt")


# ------------------------------------------------------------------------------------------
# Model folders (registry)


def test_registry_model_folder_round_trip(tmp_path):
    enc = randomised(Encoder4Editing(**SMALL))
    enc.progressive_stage = 5
    save_pretrained(enc, tmp_path / "enc")
    loaded = load_pretrained(tmp_path / "enc", expect=("e4e-encoder",))
    assert type(loaded) is Encoder4Editing and loaded.config == enc.config
    assert json.loads((tmp_path / "enc" / "config.json").read_text())["model"] == "e4e-encoder"
    enc.progressive_stage = enc.num_ws - 1  # stage is training state, not saved
    x = images(2, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), enc(x))


@pytest.mark.parametrize(
    "change, match",
    [
        ({"stage_channels": [16, 24, 32, 64]}, "another model"),
        ({"num_ws": 0}, "num_ws"),
        ({"stage_units": [1, 1, 1]}, "stage_units"),
        ({"coarse_ind": 9, "middle_ind": 8}, "coarse_ind"),
    ],
)
def test_registry_refuses_configs_that_do_not_fit(tmp_path, change, match):
    save_pretrained(Encoder4Editing(**SMALL), tmp_path / "enc")
    path = tmp_path / "enc" / "config.json"
    config = json.loads(path.read_text())
    config["kwargs"].update(change)
    path.write_text(json.dumps(config))
    with pytest.raises(UserInputError, match=match):
        load_pretrained(tmp_path / "enc")


# ------------------------------------------------------------------------------------------
# Full size (slow)


@pytest.mark.slow
def test_full_size_official_encoder_runs_and_round_trips(tmp_path):
    enc = Encoder4Editing(**OFFICIAL_CONFIG).eval()
    x = images(1, 1024)  # resized to 256 inside, as e4e feeds it
    with torch.no_grad():
        ws = enc(x)
    assert ws.shape == (1, 18, 512)
    loaded = load_e4e_checkpoint(save_e4e_checkpoint(enc, tmp_path / "e4e.pt"))["encoder"]
    with torch.no_grad():
        assert torch.equal(loaded(x), ws)
