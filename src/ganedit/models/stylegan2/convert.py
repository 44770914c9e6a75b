"""Import and export rosinality `stylegan2-pytorch` checkpoints.

The rosinality layout is a `torch.save`d dict: `g_ema` (generator state dict), optionally `g`
and `d`, and `latent_avg` (the mean w, [w_dim]) as written by its `convert_weight.py`.
Files are read with `weights_only=True`, so only tensors and plain containers are accepted;
nothing in a checkpoint can run code. The architecture is inferred from tensor shapes.

SC-GAN's self-conditioned checkpoints use the same layout, with the generator's input
`input.multiinput` [1, C, 4, 4, M] (one constant per mode) and the discriminator's mode
head `final_class.0` / `final_class.1` beside `final_linear`. They import as ganedit's
self-conditioned models (`ModeInput`: mode 0's constant is the base, the others its
offsets, which is the same sum) and export back to the same keys.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from ganedit.errors import UserInputError, expect
from ganedit.models.io import key_indices, safe_torch_load
from ganedit.models.modes import ModeLayout, attribute_count
from ganedit.models.stylegan2.networks import Discriminator, Generator, channel_table
from ganedit.utils.arrays import check_finite
from ganedit.utils.bounded import describe_keys
from ganedit.utils.files import atomic_path, require_file

log = logging.getLogger(__name__)

DEFAULT_CHANNEL_MULTIPLIER = 2


def _read_file(path: Path) -> object:
    require_file(path, "a checkpoint file")
    return safe_torch_load(path, "a plain state-dict checkpoint (StyleGAN2-pytorch layout)")


def infer_channel_config(
    channels: dict[int, int], size: int, channel_multiplier: int | None = None
) -> tuple[int, int]:
    """Find (channel_multiplier, channel_max) reproducing a per-resolution channel table.

    The multiplier only shows at 64 px and above, and only where it is not capped; when it
    cannot be seen, `channel_multiplier` (default 2) is used, which builds the same network.

    Raises:
        UserInputError: no pair reproduces the table.
    """
    channel_max = max(channels.values())
    if channel_multiplier is None:
        channel_multiplier = DEFAULT_CHANNEL_MULTIPLIER
        high = {r: c for r, c in channels.items() if r >= 64}
        if high:
            top = max(high)
            if high[top] < channel_max:
                channel_multiplier = max(1, round(high[top] * top / 16384))
            else:  # everything capped: the smallest multiplier that reaches the cap
                channel_multiplier = max(1, math.ceil(channel_max * top / 16384))
    expected = channel_table(size, channel_multiplier, channel_max)
    expect(
        expected == channels,
        "feature channels matching rosinality's table (4..32 px: 512, then 16384 * cm / res, "
        f"capped), e.g. {expected}",
        channels,
    )
    return channel_multiplier, channel_max


MULTI_INPUT = "input.multiinput"


def _native_mode_input(state: dict) -> dict:
    """SC-GAN's `input.multiinput` [1, C, 4, 4, M] as ganedit's `input.input` (mode 0) and
    `input.mode_offsets` [M - 1, C, 4, 4]; other state dicts unchanged."""
    if MULTI_INPUT not in state:
        return state
    multi = state[MULTI_INPUT]
    k = attribute_count(multi.shape[-1]) if multi.ndim == 5 else None
    expect(
        multi.ndim == 5 and multi.shape[0] == 1 and bool(k),
        "input.multiinput of shape [1, C, 4, 4, 1 + 3k]",
        tuple(multi.shape),
    )
    out = {k: v for k, v in state.items() if k != MULTI_INPUT}
    out["input.input"] = multi[..., 0].clone()
    out["input.mode_offsets"] = multi[0].permute(3, 0, 1, 2)[1:].contiguous()
    return out


def _sc_gan_mode_input(state: dict) -> dict:
    """The inverse of `_native_mode_input`."""
    if "input.mode_offsets" not in state:
        return state
    base, offsets = state["input.input"], state["input.mode_offsets"]
    multi = torch.cat([base[..., None], offsets.permute(1, 2, 3, 0)[None]], dim=-1)
    out = {k: v for k, v in state.items() if k not in ("input.input", "input.mode_offsets")}
    out[MULTI_INPUT] = multi.contiguous()
    return out


def infer_generator_config(
    state: dict,
    channel_multiplier: int | None = None,
    mode_attributes: list[str] | None = None,
) -> dict:
    """Generator kwargs from a rosinality `g_ema`/`g` state dict (lr_mlp is assumed 0.01),
    ganedit's form of it (`_native_mode_input`). A self-conditioned one's attributes are
    `mode_attributes` when given (the layout does not name them), else attribute_1..k."""
    rgb = key_indices(state, r"^to_rgbs\.(\d+)\.conv\.weight$")
    mlp = key_indices(state, r"^style\.(\d+)\.weight$")
    expect(
        bool(rgb) and bool(mlp) and "conv1.conv.weight" in state,
        "a rosinality generator state dict (keys style.*, conv1.*, to_rgbs.*) of size >= 8",
        sorted(state)[:8],
    )
    size = 2 ** (len(rgb) + 2)
    channels = {4: int(state["conv1.conv.weight"].shape[1])}
    for j in rgb:
        channels[2 ** (j + 3)] = int(state[f"to_rgbs.{j}.conv.weight"].shape[2])
    config = {
        "size": size,
        "style_dim": int(state[f"style.{mlp[0]}.weight"].shape[1]),
        "n_mlp": len(mlp),
        **_channel_kwargs(channels, size, channel_multiplier),
    }
    if "input.mode_offsets" in state:
        unnamed = ModeLayout.of_width(state["input.mode_offsets"].shape[0] + 1)
        names = list(mode_attributes) if mode_attributes else list(unnamed.attributes)
        expect(len(names) == unnamed.k, f"{unnamed.k} mode attribute names", names)
        config["mode_attributes"] = names
    return config


def infer_discriminator_config(state: dict, channel_multiplier: int | None = None) -> dict:
    """Discriminator kwargs from a rosinality `d` state dict."""
    blocks = key_indices(state, r"^convs\.(\d+)\.conv2\.1\.weight$")
    expect(
        bool(blocks) and "convs.0.0.weight" in state,
        "a rosinality discriminator state dict (keys convs.0.0.weight, convs.*.conv2.*)",
        sorted(state)[:8],
    )
    size = 2 ** (len(blocks) + 2)
    channels = {size: int(state["convs.0.0.weight"].shape[0])}
    for k in blocks:
        channels[size >> k] = int(state[f"convs.{k}.conv2.1.weight"].shape[0])
    config = {"size": size, **_channel_kwargs(channels, size, channel_multiplier)}
    if "final_class.1.weight" in state:  # SC-GAN's mode head
        config["num_modes"] = int(state["final_class.1.weight"].shape[0])
    return config


def _channel_kwargs(channels: dict[int, int], size: int, channel_multiplier: int | None) -> dict:
    """Multiplier and cap when rosinality's table fits, else the explicit per-resolution list
    (checkpoints from forks with their own channel tables load too)."""
    try:
        cm, cmax = infer_channel_config(channels, size, channel_multiplier)
    except UserInputError:
        return {"channels": [channels[r] for r in sorted(channels)]}
    return {"channel_multiplier": cm, "channel_max": cmax}


def _state_dict(ckpt: dict, key: str) -> dict:
    state = ckpt[key]
    ok = isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    expect(ok, f"`{key}` to be a state dict of tensors", type(state).__name__)
    for name, tensor in state.items():
        if tensor.is_floating_point():
            check_finite(tensor.float().numpy(), f"{key}.{name}")
    return state


def _load_into(model: torch.nn.Module, state: dict, what: str) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise UserInputError(
            f"expected a {what} state dict matching the inferred config {model.config}, "
            f"received one that does not load: {err}"
        ) from err


def _build_generator(
    state: dict, channel_multiplier: int | None, lr_mlp: float, mode_attributes=None
) -> Generator:
    state = _native_mode_input(state)
    config = infer_generator_config(state, channel_multiplier, mode_attributes)
    g = Generator(**config, lr_mlp=lr_mlp)
    _load_into(g, state, "rosinality generator")
    return g


def _set_w_avg(latent_avg: object, generators: list[Generator]) -> torch.Tensor:
    w_dim = generators[0].w_dim
    ok = isinstance(latent_avg, torch.Tensor) and latent_avg.numel() == w_dim
    expect(ok, f"latent_avg as a tensor of {w_dim} values", getattr(latent_avg, "shape", None))
    check_finite(latent_avg.float().numpy(), "latent_avg")
    for g in generators:
        g.w_avg.copy_(latent_avg.reshape(-1))
    return latent_avg.reshape(-1)


@torch.no_grad()
def load_rosinality_checkpoint(
    path: str | Path,
    device: str | torch.device = "cpu",
    *,
    channel_multiplier: int | None = None,
    lr_mlp: float = 0.01,
    mode_attributes: list[str] | None = None,
) -> dict:
    """Read a rosinality checkpoint (or SC-GAN's) and build our models from it.

    The architecture comes from tensor shapes: `size` from the number of `to_rgbs.*` layers,
    `style_dim` from `style.1.weight`, `n_mlp` from the count of `style.{i}.weight`, and the
    channel multiplier from the channel counts at 64 px and above. Below 64 px (or when every
    layer is capped) the multiplier cannot be seen in the weights; 2 is used unless
    `channel_multiplier` is given, and the network built is the same either way. `lr_mlp`
    cannot be inferred (weights are stored divided by it); rosinality always trains with 0.01.
    `mode_attributes` names a self-conditioned checkpoint's k attributes, in slot order.

    Args:
        path: a `.pt` file holding a dict with `g_ema` and optionally `g`, `d`, `latent_avg`.
        device: where the returned models live.

    Returns:
        {"g_ema": Generator (eval mode), "g": Generator | None, "d": Discriminator | None,
        "latent_avg": tensor [w_dim] | None}; when `latent_avg` is present it is also copied
        into each generator's `w_avg`.

    Raises:
        UserInputError: missing file, pickled non-tensor objects, no `g_ema`, or weights that
        do not match any supported architecture.
    """
    path = Path(path)
    ckpt = _read_file(path)
    has_g_ema = isinstance(ckpt, dict) and "g_ema" in ckpt
    if not has_g_ema:
        raise UserInputError(
            f"expected a rosinality checkpoint dict with a `g_ema` entry in {str(path)!r}, "
            f"received {describe_keys(ckpt)}"
        )
    build = lambda key: _build_generator(  # noqa: E731
        _state_dict(ckpt, key), channel_multiplier, lr_mlp, mode_attributes
    )
    g_ema = build("g_ema")
    g = build("g") if "g" in ckpt else None
    d = None
    if "d" in ckpt:
        d_state = _state_dict(ckpt, "d")
        d = Discriminator(**infer_discriminator_config(d_state, channel_multiplier))
        _load_into(d, d_state, "rosinality discriminator")
    latent_avg = None
    if ckpt.get("latent_avg") is not None:
        latent_avg = _set_w_avg(ckpt["latent_avg"], [m for m in (g_ema, g) if m is not None])
    return {
        "g_ema": g_ema.to(device).eval(),
        "g": None if g is None else g.to(device),
        "d": None if d is None else d.to(device),
        "latent_avg": None if latent_avg is None else latent_avg.to(device),
    }


def _rosinality_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    # `w_avg` is ours, not rosinality's: it travels as `latent_avg` instead.
    state = model.state_dict()
    state = {k: v.detach().cpu().clone() for k, v in state.items() if k != "w_avg"}
    return _sc_gan_mode_input(state)


def export_rosinality_checkpoint(
    path: str | Path,
    g_ema: Generator,
    g: Generator | None = None,
    d: Discriminator | None = None,
) -> Path:
    """Write `{g_ema, latent_avg[, g][, d]}` (plain tensors only) atomically to `path`.

    rosinality's `Generator`/`Discriminator` load these state dicts with `strict=True`
    (self-conditioned models: SC-GAN's `Generator_MMD` and its discriminator with the mode
    head); `latent_avg` is `g_ema.w_avg` (call `g_ema.update_w_avg()` first if never set).
    """
    expect(isinstance(g_ema, Generator), "g_ema as a stylegan2 Generator", type(g_ema).__name__)
    expect(g is None or isinstance(g, Generator), "g as a Generator or None", type(g).__name__)
    expect(
        d is None or isinstance(d, Discriminator), "d as a Discriminator or None", type(d).__name__
    )
    ckpt: dict[str, object] = {
        "g_ema": _rosinality_state(g_ema),
        "latent_avg": g_ema.w_avg.detach().cpu().clone(),
    }
    if g is not None:
        ckpt["g"] = _rosinality_state(g)
    if d is not None:
        # A twin mode head (train-selfcond --mode-loss twin) only trains; the layout has no
        # such module, so it stays behind and upstream's strict loaders read the rest.
        ckpt["d"] = {
            k: v for k, v in _rosinality_state(d).items() if not k.startswith("final_twin.")
        }
        if d.stddev_group != 4:
            # The layout has no field for it; rosinality and our loader rebuild groups of 4.
            log.warning(
                "the exported discriminator used minibatch-stddev groups of %d; loaders of "
                "this layout rebuild it with groups of 4",
                d.stddev_group,
            )
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return Path(path)
