"""Import and export the official encoder4editing checkpoint layout, and e4e's `latents.pt`.

The official layout is a `torch.save`d dict, as e4e's training coach writes it:

    state_dict   the whole pSp net: `encoder.*` (the e4e encoder) and `decoder.*` (a
                 rosinality StyleGAN2 generator)
    opts         the training options as a plain dict (`encoder_type`, `stylegan_size`,
                 `start_from_latent_avg`, `progressive_start`, `dataset_type`, ...)
    latent_avg   the mean w the codes start from: [num_ws, w_dim] (one row repeated) or [w_dim]

Training checkpoints add `global_step`, `optimizer`, `discriminator_state_dict`, ...; they are
ignored. Files are read with `weights_only=True`: only tensors and plain containers are
rebuilt, so nothing in a checkpoint can run code. The encoder's config is inferred from the
tensors' shapes (see `infer_encoder_config`) and checked on the `meta` device before anything
is allocated. `latents.pt` is one tensor [N, num_ws, w_dim], as e4e's `scripts/inference.py`
writes it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ganedit.errors import UserInputError, expect
from ganedit.models.encoder.networks import Encoder4Editing
from ganedit.models.io import check_state_shapes, construct, key_indices, safe_torch_load
from ganedit.models.stylegan2.convert import infer_generator_config
from ganedit.models.stylegan2.networks import Generator
from ganedit.utils.arrays import check_finite
from ganedit.utils.bounded import describe, describe_keys
from ganedit.utils.device import resolve_device
from ganedit.utils.files import atomic_path, require_file

log = logging.getLogger(__name__)

CONFIG_KEY = "ganedit_config"  # in `opts`: the exact config of an encoder ganedit exported
_WHAT = "an e4e checkpoint (a dict of state_dict, opts and latent_avg)"
_OFFICIAL_UNITS = [3, 4, 14, 3]  # IR-SE50
_DATASET_TYPES = {1024: "ffhq_encode", 512: "cars_encode"}  # e4e's loader sizes G by these


# ------------------------------------------------------------------------------------------
# Reading


def load_e4e_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", *, build_decoder: bool = True
) -> dict:
    """Read an official encoder4editing checkpoint (or one `save_e4e_checkpoint` wrote).

    Args:
        path: a `.pt` file in the layout of the module docstring.
        device: where the returned modules live.
        build_decoder: convert `decoder.*` into a ganedit StyleGAN2 `Generator`.

    Returns:
        {"encoder": Encoder4Editing (eval mode, every offset on), "opts": dict,
        "latent_avg": tensor [w_dim] | None, "decoder_state": the `decoder.*` tensors with the
        prefix removed (rosinality names; {} when absent), "decoder": Generator | None}. The
        decoder is built by the rosinality converter (architecture from its shapes, `w_avg`
        from `latent_avg`); a decoder it cannot build (e.g. a modified generator) is left as
        raw tensors with a warning. A file whose opts start from latent_avg but that holds
        none gets its decoder's mean w (10,000 seeded samples), as e4e's loader computes it.

    Raises:
        UserInputError: missing file, pickled Python objects, a file of another layout, an
        encoder other than e4e's, or weights that do not fit any encoder config.
        DamagedInputError: a file torch cannot read, or non-finite weights.
    """
    path, device = Path(path), resolve_device(device)
    ckpt = _read_checkpoint(path)
    opts = _opts(ckpt, path)
    state = _tensor_dict(ckpt["state_dict"], "state_dict", path)
    enc_state, dec_state = _prefixed(state, "encoder."), _prefixed(state, "decoder.")
    expect(
        bool(enc_state),
        f"`encoder.`-prefixed weights in the state_dict of {str(path)!r}",
        f"keys such as {sorted(state)[:4]}",
    )
    raw_avg = ckpt.get("latent_avg")
    try:
        config = infer_encoder_config(enc_state, opts, has_latent_avg=raw_avg is not None)
    except UserInputError:
        raise
    except (ValueError, IndexError, KeyError, TypeError) as err:
        raise UserInputError(
            f"expected an e4e encoder state dict in {str(path)!r}, received tensors of other "
            f"ranks or names ({type(err).__name__}: {err})"
        ) from None
    latent_avg = _latent_avg(raw_avg, config["w_dim"], config["num_ws"], path)
    needs_avg = config["start_from_latent_avg"] and latent_avg is None
    wanted = dec_state and (build_decoder or needs_avg)
    decoder = _build_decoder(dec_state, latent_avg) if wanted else None
    if needs_avg:
        latent_avg = _decoder_mean_w(decoder, config["w_dim"], path)
    encoder = _build_encoder(config, enc_state, latent_avg, path)
    decoder = decoder if build_decoder else None
    return {
        "encoder": encoder.to(device).eval(),
        "opts": opts,
        "latent_avg": None if latent_avg is None else latent_avg.to(device),
        "decoder_state": dec_state,
        "decoder": None if decoder is None else decoder.to(device).eval(),
    }


def _read_checkpoint(path: Path) -> dict:
    require_file(path, f"{_WHAT} file")
    ckpt = safe_torch_load(path, _WHAT)
    if not isinstance(ckpt, dict):
        raise UserInputError(f"expected {_WHAT} in {str(path)!r}, received a {_kind(ckpt)}")
    if "state_dict" not in ckpt:
        raise UserInputError(
            f"expected {_WHAT} with a `state_dict` entry in {str(path)!r}, received "
            f"{describe_keys(ckpt, 8)}"
        )
    return ckpt


def _kind(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {list(value.shape)}"
    return type(value).__name__


def _opts(ckpt: dict, path: Path) -> dict:
    opts = ckpt.get("opts")
    if opts is None:
        return {}
    if not isinstance(opts, dict):
        raise UserInputError(
            f"expected `opts` as a plain dict (e4e saves vars(opts)) in {str(path)!r}, "
            f"received a {_kind(opts)}"
        )
    encoder_type = opts.get("encoder_type", "Encoder4Editing")
    if encoder_type != "Encoder4Editing":
        raise UserInputError(
            f"expected an Encoder4Editing checkpoint in {str(path)!r}, received encoder_type "
            f"{describe(encoder_type)} (its styles are not a base code plus offsets)"
        )
    return dict(opts)


def _tensor_dict(value: object, key: str, path: Path) -> dict[str, torch.Tensor]:
    ok = isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
    )
    expect(ok, f"`{key}` in {str(path)!r} as a dict of named tensors", _kind(value))
    return value


def _prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def infer_encoder_config(
    state: Mapping[str, torch.Tensor], opts: Mapping | None = None, has_latent_avg: bool = True
) -> dict:
    """Encoder4Editing kwargs from an encoder state dict (official names, no prefix).

    Everything comes from the shapes: num_ws is the number of `styles.*` heads, w_dim and
    style_channels the shape of their linear layers, image_size and the coarse/middle split
    the number of convs of each head (a head reading an S x S map has log2(S) of them, and
    c3 is image_size / 16), the stage widths the `body.*` convs, the SE reduction their
    squeeze convs, and the stage boundaries the 1x1 shortcut convs where the width changes.
    Stages of equal width hide their boundary: then the split ganedit stored in
    `opts["ganedit_config"]` is used when it fits, else IR-SE50's [3, 4, 14, 3] when the
    count fits. `start_from_latent_avg` comes from opts (else: whether a latent_avg is
    present). The config is checked against every shape when the encoder is built.
    """
    opts = dict(opts or {})
    stored = opts.get(CONFIG_KEY) if isinstance(opts.get(CONFIG_KEY), dict) else {}
    styles = key_indices(state, r"^styles\.(\d+)\.linear\.weight$")
    units = key_indices(state, r"^body\.(\d+)\.res_layer\.3\.weight$")
    expect(
        bool(styles)
        and styles == list(range(len(styles)))
        and units == list(range(len(units)))
        and len(units) >= 4,
        "an e4e encoder state dict (keys input_layer.*, body.*, styles.*, latlayer*)",
        sorted(state)[:6],
    )
    config = {
        **_head_layout(state, len(styles)),
        **_stages(state, len(units), stored),
        "start_from_latent_avg": bool(opts.get("start_from_latent_avg", has_latent_avg)),
    }
    _warn_on_size_mismatch(opts, config["num_ws"])
    return config


def _head_layout(state: Mapping[str, torch.Tensor], num_ws: int) -> dict:
    convs = [
        len(key_indices(state, rf"^styles\.{i}\.convs\.(\d+)\.weight$")) for i in range(num_ws)
    ]
    n = convs[0]
    coarse = sum(c == n for c in convs)
    middle = coarse + sum(c == n + 1 for c in convs)
    expected = [n] * coarse + [n + 1] * (middle - coarse) + [n + 2] * (num_ws - middle)
    expect(
        n >= 1 and convs == expected,
        "style heads with k convs (coarse), then k + 1 (middle), then k + 2 (fine)",
        convs,
    )
    w_dim, style_channels = state["styles.0.linear.weight"].shape
    return {
        "image_size": 16 * 2**n,
        "w_dim": int(w_dim),
        "num_ws": num_ws,
        "style_channels": int(style_channels),
        "coarse_ind": coarse,
        "middle_ind": middle,
    }


def _stages(state: Mapping[str, torch.Tensor], count: int, stored: dict) -> dict:
    widths = [int(state[f"body.{k}.res_layer.3.weight"].shape[0]) for k in range(count)]
    shown = [0] + [k for k in range(1, count) if f"body.{k}.shortcut_layer.0.weight" in state]
    candidates = [stored.get("stage_units"), _OFFICIAL_UNITS]
    if len(shown) == 4:
        units = [b - a for a, b in zip(shown, [*shown[1:], count], strict=True)]
    else:
        units = next((u for u in candidates if _split_fits(u, count, shown)), None)
    if units is None:
        raise UserInputError(
            f"expected encoder weights whose 4 stages show (a 1x1 shortcut conv where the width "
            f"changes) or opts['{CONFIG_KEY}'], received {count} units starting stages at {shown}"
        )
    firsts = np.cumsum([0, *units[:3]]).tolist()
    return {
        "stage_units": list(units),
        "stage_channels": [widths[k] for k in firsts],
        "se_reduction": _se_reduction(state, widths, stored.get("se_reduction")),
    }


def _split_fits(units: object, count: int, shown: list[int]) -> bool:
    """Whether a stage split has `count` units and starts a stage at every visible start."""
    ok = isinstance(units, list) and len(units) == 4
    ok = ok and all(isinstance(u, int) and not isinstance(u, bool) and u >= 1 for u in units)
    return ok and sum(units) == count and set(shown) <= set(np.cumsum([0, *units[:3]]).tolist())


def _se_reduction(state: Mapping[str, torch.Tensor], widths: list[int], stored: object) -> int:
    """The reduction that gives every unit's squeeze width (the stored one first, if any)."""
    keys = [f"body.{k}.res_layer.5.fc1.weight" for k in range(len(widths))]
    missing = [k for k in keys if k not in state]
    expect(not missing, "IR-SE units (a squeeze conv res_layer.5.fc1 in each)", missing[:3])
    hidden = [int(state[k].shape[0]) for k in keys]
    candidates = [stored] if isinstance(stored, int) and not isinstance(stored, bool) else []
    candidates.append(max(1, widths[-1] // max(1, hidden[-1])))
    for r in candidates:
        if r >= 1 and all(w // r == h for w, h in zip(widths, hidden, strict=True)):
            return r
    return candidates[-1]  # the shape check names the mismatch


def _warn_on_size_mismatch(opts: dict, num_ws: int) -> None:
    size = opts.get("stylegan_size")
    if isinstance(size, int) and size >= 4 and 2 * (size.bit_length() - 1) - 2 != num_ws:
        log.warning(
            "the checkpoint's opts give stylegan_size %d, but its encoder has %d style heads; "
            "the heads decide",
            size,
            num_ws,
        )


def _latent_avg(value: object, w_dim: int, num_ws: int, path: Path) -> torch.Tensor | None:
    """The checkpoint's latent_avg as one row [w_dim]; rows that differ cannot be one mean."""
    if value is None:
        return None
    shapes = [(w_dim,), (1, w_dim), (num_ws, w_dim)]
    ok = isinstance(value, torch.Tensor) and value.is_floating_point()
    ok = ok and tuple(value.shape) in shapes
    expect(ok, f"`latent_avg` in {str(path)!r} as a float tensor of shape {shapes}", _kind(value))
    check_finite(value.float().numpy(), f"latent_avg of {str(path)!r}")
    rows = value.detach().float().reshape(-1, w_dim)
    spread = float((rows - rows[:1]).abs().max())
    expect(
        spread == 0.0,
        f"`latent_avg` rows in {str(path)!r} all equal (one mean w, repeated)",
        f"rows differing by up to {spread:.3g}",
    )
    return rows[0].clone()


def _decoder_mean_w(decoder: Generator | None, w_dim: int, path: Path) -> torch.Tensor:
    """What e4e does for a checkpoint without `latent_avg` whose opts start from it (a036381):
    the mean w of 10,000 samples of its decoder (seeded here, so every load agrees)."""
    if decoder is None or decoder.w_dim != w_dim:
        raise UserInputError(
            f"expected a `latent_avg` in {str(path)!r}, since its opts set start_from_latent_avg "
            f"(or a decoder of w_dim {w_dim} to compute it from, as e4e does), received none"
        )
    log.warning(
        "%s has no latent_avg: using the mean w of 10,000 seeded samples of its decoder, as e4e "
        "computes it (e4e's own draw is unseeded, so its codes differ slightly)",
        path.name,
    )
    with torch.no_grad():
        return decoder.update_w_avg(generator=torch.Generator().manual_seed(0)).float()


def _build_encoder(
    config: dict, state: dict, latent_avg: torch.Tensor | None, path: Path
) -> Encoder4Editing:
    """Build on `meta`, compare shapes, then adopt the checkpoint's tensors (float32).

    The tensors are assigned instead of copied into freshly initialised ones, so nothing is
    allocated twice and the global RNG is not drawn from."""
    with torch.device("meta"):
        encoder = construct(Encoder4Editing, config, f"an Encoder4Editing config in {str(path)!r}")
    expected = {k: tuple(v.shape) for k, v in encoder.state_dict().items() if k != "latent_avg"}
    found = {k: (str(v.dtype), tuple(v.shape)) for k, v in state.items()}
    check_state_shapes(expected, found, f"the encoder of {str(path)!r}")
    tensors = {}
    for name, tensor in state.items():
        if tensor.is_floating_point():
            check_finite(tensor.float().numpy(), f"encoder.{name} of {str(path)!r}")
            tensor = tensor.to(torch.float32)
        tensors[name] = tensor.clone()
    tensors["latent_avg"] = (
        torch.zeros(config["w_dim"]) if latent_avg is None else latent_avg.clone()
    )
    encoder.load_state_dict(tensors, strict=True, assign=True)
    return encoder


def _build_decoder(state: dict, latent_avg: torch.Tensor | None) -> Generator | None:
    """The rosinality decoder as a ganedit Generator, or None (with a warning) if it is not one
    the rosinality converter can build."""
    try:
        with torch.random.fork_rng(devices=[]):  # building draws initial weights
            generator = Generator(**infer_generator_config(state))
        generator.load_state_dict(state, strict=True)
    except (UserInputError, RuntimeError, KeyError, ValueError, TypeError) as err:
        log.warning("the checkpoint's decoder is kept as raw tensors: %s", str(err)[:200])
        return None
    for name, tensor in generator.state_dict().items():
        if tensor.is_floating_point():
            check_finite(tensor.float().numpy(), f"decoder.{name}")
    if latent_avg is not None:
        generator.w_avg.copy_(latent_avg)
    return generator


# ------------------------------------------------------------------------------------------
# Writing


def save_e4e_checkpoint(
    encoder: Encoder4Editing,
    path: str | Path,
    opts: Mapping | None = None,
    decoder_state: Mapping[str, torch.Tensor] | Generator | None = None,
) -> Path:
    """Write `encoder` in the official layout (tensors and JSON types only), atomically.

    `opts` (JSON types) is written with the facts the encoder implies set: `encoder_type`,
    `stylegan_size`, `start_from_latent_avg`, a default `dataset_type` for 1024/512 px, and the
    exact config under `ganedit_config`. `latent_avg` is written as [num_ws, w_dim] rows, as
    e4e does. `decoder_state` (rosinality names, or a ganedit Generator) goes in as
    `decoder.*`; e4e's own loader loads a decoder strictly, so include one for files the
    official scripts will read (they also only build the IR-SE50 encoder).

    Returns:
        `path`. An existing file is replaced (entry points check outputs before any work).
    """
    expect(isinstance(encoder, Encoder4Editing), "an Encoder4Editing", type(encoder).__name__)
    state = {
        f"encoder.{k}": v.detach().cpu().clone()
        for k, v in encoder.state_dict().items()
        if k != "latent_avg"
    }
    state.update({f"decoder.{k}": v for k, v in _decoder_tensors(decoder_state).items()})
    avg = encoder.latent_avg.detach().cpu().float()
    ckpt = {
        "state_dict": state,
        "opts": _export_opts(encoder, opts),
        "latent_avg": avg[None, :].repeat(encoder.num_ws, 1),
    }
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return Path(path)


def _decoder_tensors(decoder: Mapping | Generator | None) -> dict[str, torch.Tensor]:
    if decoder is None:
        return {}
    if isinstance(decoder, Generator):
        # `w_avg` is ours, not rosinality's: it travels as the encoder's latent_avg.
        decoder = {k: v for k, v in decoder.state_dict().items() if k != "w_avg"}
    ok = isinstance(decoder, Mapping) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in decoder.items()
    )
    expect(ok, "decoder_state as a Generator or a dict of named tensors", _kind(decoder))
    return {k: v.detach().cpu().clone() for k, v in decoder.items()}


def _export_opts(encoder: Encoder4Editing, opts: Mapping | None) -> dict:
    out = dict(opts or {})
    try:
        ok = all(isinstance(k, str) for k in out)
        json.dumps(out, allow_nan=False)
    except (TypeError, ValueError):
        ok = False
    expect(ok, "opts as a dict of JSON values with string keys", str(out)[:120])
    implied = {
        "encoder_type": "Encoder4Editing",
        "start_from_latent_avg": encoder.start_from_latent_avg,
        CONFIG_KEY: json.loads(json.dumps(encoder.config)),
    }
    if encoder.num_ws % 2 == 0:
        implied["stylegan_size"] = 2 ** ((encoder.num_ws + 2) // 2)
        out.setdefault("dataset_type", _DATASET_TYPES.get(implied["stylegan_size"], ""))
    for key, value in implied.items():
        if key in out and out[key] != value:
            log.warning(
                "opts[%r] = %r replaced by %r, which the encoder implies", key, out[key], value
            )
    out.update(implied)
    return out


# ------------------------------------------------------------------------------------------
# latents.pt


def save_latents_pt(ws: torch.Tensor | np.ndarray, path: str | Path) -> Path:
    """Write codes [N, num_ws, w_dim] as e4e's `latents.pt` (one float32 tensor), atomically."""
    ws = torch.as_tensor(ws) if isinstance(ws, np.ndarray) else ws
    ok = isinstance(ws, torch.Tensor) and ws.ndim == 3 and ws.is_floating_point()
    expect(ok, "codes as a float tensor [N, num_ws, w_dim]", getattr(ws, "shape", type(ws)))
    expect(bool(torch.isfinite(ws).all()), "finite codes", "NaN or inf values")
    # A clone: torch.save of a view would write the whole storage it looks into.
    tensor = ws.detach().to("cpu", torch.float32).contiguous().clone()
    with atomic_path(path) as tmp:
        torch.save(tensor, tmp)
    return Path(path)


def load_latents_pt(path: str | Path) -> torch.Tensor:
    """Read an e4e `latents.pt`: codes [N, num_ws, w_dim] (float32, CPU)."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"expected a latents.pt file, received {str(path)!r} (no such file)")
    what = "a latents.pt tensor [N, num_ws, w_dim]"
    value = safe_torch_load(path, what)
    ok = isinstance(value, torch.Tensor) and value.ndim == 3 and value.is_floating_point()
    expect(ok, f"one float tensor [N, num_ws, w_dim] in {str(path)!r}", _kind(value))
    check_finite(value.float().numpy(), f"the codes of {str(path)!r}")
    return value.float()
