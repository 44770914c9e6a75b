"""TEST-ONLY InterFaceGAN `.pth` files written by hand: plain state dicts of random tensors under
the key names InterFaceGAN's converters save (genforce/interfacegan, `models/*_generator.py`
`convert_tf_model`), never through ganedit's modules. For tests/models/
test_interfacegan_generators.py and tests/test_hostile_cli.py.

- `pggan_state`: the current PGGAN layout (`models/pggan_generator_model.py` since d214bc8,
  2019-08-14): the whole model's state dict, so `lod` (0-d, 0 for a grown network), `layer0`
  (the 4x4 dense block as a [C, z, 4, 4] conv) .. `layer{2k+1}`, and every level of detail's
  RGB head `output0` .. `output{k}`.
- `pggan_state_2019`: the first release's layout (7143965, 2019-08-06): `layer1` .. `layer{2k+2}`
  and the final head only, `output_RxR`; no `lod`.
- `stylegan_state`: StyleGAN v1 as its converter saves it (`truncation.truncation` deleted).
"""

from __future__ import annotations

import torch

Z = 8
N_MAPPING = 8
# PGGAN pixel-normalises every layer's input over its channels; with fewer than 8 channels a
# random network has pixels where that amplifies float32 round-off past the tolerance.
PGGAN_CHANNELS = [Z, 8, 8, 8]  # z, then 4, 8, 16 px
STYLE_CHANNELS = [8, 8, 6, 4, 4]  # 4..64 px: 10 style layers, so the cutoff 8 leaves 2 free
FUSED_BLOCKS = (4,)  # 64 px upsamples by a transposed conv ("fused scale", as from 128 px)


def _randn(gen: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=gen)


def pggan_state(channels: list[int], seed: int = 0) -> dict[str, torch.Tensor]:
    """The current layout, in the order of the model's state dict (its own `lod` first)."""
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {"lod": torch.tensor(0.0)}

    def block(j: int, c_out: int, c_in: int, k: int) -> None:
        state[f"layer{j}.conv.weight"] = _randn(gen, c_out, c_in, k, k)
        state[f"layer{j}.wscale.bias"] = _randn(gen, c_out, scale=0.2)

    for b in range(1, len(channels)):  # level of detail b - 1: layers 2b - 2, 2b - 1, a head
        block(2 * b - 2, channels[b], channels[b - 1], 4 if b == 1 else 3)
        block(2 * b - 1, channels[b], channels[b], 3)
        state[f"output{b - 1}.conv.weight"] = _randn(gen, 3, channels[b], 1, 1)
        state[f"output{b - 1}.wscale.bias"] = _randn(gen, 3, scale=0.2)
    return state


def pggan_state_2019(channels: list[int], seed: int = 0) -> dict[str, torch.Tensor]:
    """layer{j}.conv.weight / layer{j}.wscale.bias for j = 1..2k+2, then output_RxR.*."""
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}

    def block(j: int, c_out: int, c_in: int, k: int) -> None:
        state[f"layer{j}.conv.weight"] = _randn(gen, c_out, c_in, k, k)
        state[f"layer{j}.wscale.bias"] = _randn(gen, c_out, scale=0.2)

    block(1, channels[1], channels[0], 4)
    block(2, channels[1], channels[1], 3)
    for i in range(2, len(channels)):
        block(2 * i - 1, channels[i], channels[i - 1], 3)
        block(2 * i, channels[i], channels[i], 3)
    r = 2 ** len(channels)
    state[f"output_{r}x{r}.conv.weight"] = _randn(gen, 3, channels[-1], 1, 1)
    state[f"output_{r}x{r}.wscale.bias"] = _randn(gen, 3, scale=0.2)
    return state


# One thing wrong with a current-layout PGGAN, and a word of the one-line refusal it gets.
PGGAN_DAMAGE = {
    "lod": "fully grown",  # lod 1: a network one level of detail short of grown
    "missing-layer": "no layer2",  # both tensors of layer2 gone
    "missing-tensor": "missing layer3.wscale.bias",
    "head-shape": "output1.conv.weight",  # a head of 4 channels instead of 3
    "unexpected": "unexpected output9",
    "fused": "fused_scale",
    "nan": "layer1.conv.weight",  # DamagedInputError, naming the tensor
}


def damaged_pggan_state(kind: str, channels: list[int] = PGGAN_CHANNELS) -> dict:
    """`pggan_state(channels)` with the `PGGAN_DAMAGE[kind]` fault."""
    state = pggan_state(channels)
    if kind == "lod":
        state["lod"] = torch.tensor(1.0)
    elif kind == "missing-layer":
        del state["layer2.conv.weight"], state["layer2.wscale.bias"]
    elif kind == "missing-tensor":
        del state["layer3.wscale.bias"]
    elif kind == "head-shape":
        state["output1.conv.weight"] = torch.zeros(4, channels[2], 1, 1)
    elif kind == "unexpected":
        state["output9.conv.weight"] = torch.zeros(3, channels[-1], 1, 1)
    elif kind == "fused":
        state["layer2.weight"] = state.pop("layer2.conv.weight").permute(2, 3, 1, 0)
    else:
        state["layer1.conv.weight"][0, 0, 1, 1] = float("nan")
    return state


def current_as_2019(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same weights under the 2019 names: layer j -> j + 1, the last head -> output_RxR;
    `lod` and the lower heads have no place there."""
    heads = sorted(int(k[6:].split(".")[0]) for k in state if k.startswith("output"))
    last = heads[-1]
    r = 4 * 2**last
    out = {}
    for key, value in state.items():
        name, _, rest = key.partition(".")
        if name.startswith("layer"):
            out[f"layer{int(name[5:]) + 1}.{rest}"] = value
        elif name == f"output{last}":
            out[f"output_{r}x{r}.{rest}"] = value
    return out


def _epilogue(state: dict, gen: torch.Generator, i: int, c: int, w_dim: int) -> None:
    p = f"synthesis.layer{i}.epilogue."
    r = 2 ** (i // 2 + 2)
    state[p + "apply_noise.noise"] = _randn(gen, 1, 1, r, r)
    state[p + "apply_noise.weight"] = _randn(gen, c, scale=0.3)
    state[p + "bias"] = _randn(gen, c, scale=0.2)
    state[p + "style_mod.dense.linear.weight"] = _randn(gen, 2 * c, w_dim)
    state[p + "style_mod.dense.wscale.bias"] = _randn(gen, 2 * c, scale=0.2)


def stylegan_state(
    channels: list[int] = STYLE_CHANNELS, w_dim: int = Z, fused=FUSED_BLOCKS, seed: int = 0
) -> dict[str, torch.Tensor]:
    """InterFaceGAN's StyleGAN state dict (without `truncation.truncation`, as its converter
    saves it). Mapping weights are stored times 100 (1 / the learning-rate multiplier)."""
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for i in range(N_MAPPING):
        state[f"mapping.dense{i}.linear.weight"] = _randn(gen, w_dim, Z if i == 0 else w_dim) * 100
        state[f"mapping.dense{i}.wscale.bias"] = _randn(gen, w_dim, scale=20.0)
    state["truncation.w_avg"] = _randn(gen, w_dim)
    state["synthesis.lod"] = torch.tensor(0.0)
    blur = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16
    for b, c in enumerate(channels):
        if b == 0:
            state["synthesis.layer0.first_layer"] = _randn(gen, 1, c, 4, 4)
        else:
            c_in = channels[b - 1]
            if b in fused:  # stored as TensorFlow holds it: [kh, kw, in, out]
                state[f"synthesis.layer{2 * b}.weight"] = _randn(gen, 3, 3, c_in, c)
            else:
                state[f"synthesis.layer{2 * b}.conv.weight"] = _randn(gen, c, c_in, 3, 3)
            state[f"synthesis.layer{2 * b}.blur.kernel"] = blur.expand(c, 1, 3, 3).clone()
        _epilogue(state, gen, 2 * b, c, w_dim)
        state[f"synthesis.layer{2 * b + 1}.conv.weight"] = _randn(gen, c, c, 3, 3)
        _epilogue(state, gen, 2 * b + 1, c, w_dim)
        state[f"synthesis.output{b}.conv.weight"] = _randn(gen, 3, c, 1, 1)
        state[f"synthesis.output{b}.bias"] = _randn(gen, 3, scale=0.2)
    return state
