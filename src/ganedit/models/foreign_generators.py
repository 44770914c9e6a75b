"""Loaders of the generator formats other codebases wrote, as sources: InterFaceGAN's `.pth`
state dicts (PGGAN or StyleGAN v1) and NVIDIA's TensorFlow pickles (PGGAN, StyleGAN,
StyleGAN2). `ganedit.models.formats` names these loaders in its table.

They live here, above `sources`, `pggan`, `stylegan1` and `tf_generators`, so that those
modules never import each other in a circle (tests/test_layers.py refuses one).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ganedit.errors import UserInputError
from ganedit.models import pggan, stylegan1, tf_generators
from ganedit.models.io import safe_torch_load
from ganedit.models.sources import StyleGANSource, ZOnlySource, _stylegan_from_file, file_sha256
from ganedit.utils.arrays import check_finite
from ganedit.utils.bounded import describe_keys
from ganedit.utils.files import require_file


def load_interfacegan_file(
    path: Path, device: torch.device, truncation_psi: float, mode_names=None
) -> ZOnlySource | stylegan1.StyleGAN1Source:
    """An InterFaceGAN `.pth` (a plain state dict), told apart by its keys: PGGAN in either of
    its layouts (z only, so truncation does not apply) or StyleGAN v1 (psi on its first 8
    layers, as InterFaceGAN)."""
    state = _read_state_dict(path, "an InterFaceGAN PGGAN or StyleGAN state dict (.pth)")
    sha = file_sha256(path)
    if stylegan1.is_stylegan1_state(state):
        g = stylegan1.stylegan1_from_state(state).to(device)
        return stylegan1.StyleGAN1Source(g, path.name, truncation_psi, weights_sha256=sha)
    if pggan.is_pggan_state(state):
        return _pggan_source(pggan.pggan_from_state(state).to(device), path, truncation_psi)
    raise UserInputError(
        f"expected InterFaceGAN's PGGAN keys (layer0.conv.weight, output0..output{{k}}.*, lod; "
        f"or its 2019 layout's layer1.conv.weight, output_RxR.*) or StyleGAN keys "
        f"(mapping.dense0.*, synthesis.layer0.first_layer) in {str(path)!r}, received "
        f"{describe_keys(state)}"
    )


def _pggan_source(g: torch.nn.Module, path: Path, truncation_psi: float) -> ZOnlySource:
    if truncation_psi != 1:
        raise UserInputError(
            f"expected truncation psi 1 for the PGGAN {path.name} (z only: no w space to "
            f"truncate in), received {truncation_psi}"
        )
    sha = file_sha256(path)
    return pggan.PGGANSource(g, path.name, g.z_dim, g.img_resolution, weights_sha256=sha)


def load_tf_file(
    path: Path, device: torch.device, truncation_psi: float, mode_names=None
) -> StyleGANSource | ZOnlySource | stylegan1.StyleGAN1Source:
    """A TensorFlow pickle's Gs as the source of its kind (PGGAN z only; StyleGAN truncated
    up to the pickle's own cutoff; StyleGAN2 on every layer, as ganedit's sources do)."""
    loaded = tf_generators.load_tf_pickle(path, device)
    if loaded.kind == "pggan":
        return _pggan_source(loaded.generator, path, truncation_psi)
    if loaded.kind == "stylegan1":
        cutoff, sha = loaded.truncation_cutoff, file_sha256(path)
        return stylegan1.StyleGAN1Source(
            loaded.generator,
            path.name,
            truncation_psi,
            truncation_cutoff=cutoff,
            weights_sha256=sha,
        )
    if loaded.truncation_cutoff is not None and truncation_psi != 1:
        raise UserInputError(
            f"expected truncation psi 1 for {path.name}, whose network truncates only its "
            f"first {loaded.truncation_cutoff} layers (truncation_cutoff), received "
            f"{truncation_psi}: ganedit's StyleGAN2 source truncates every layer"
        )
    return _stylegan_from_file(path, loaded.generator, loaded.w_avg, truncation_psi)


def _read_state_dict(path: Path, what: str) -> dict[str, torch.Tensor]:
    """A `.pth` holding one flat dict of finite tensors, read with weights_only (one line on
    anything else: a missing file, pickled objects, damage, NaN weights)."""
    require_file(path, what)
    state = safe_torch_load(path, what)
    ok = isinstance(state, dict) and bool(state)
    ok = ok and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    if not ok:
        raise UserInputError(
            f"expected {what} of named tensors in {str(path)!r}, received {describe_keys(state)}"
        )
    for key, tensor in state.items():
        if tensor.is_floating_point():
            check_finite(tensor.float().numpy(), f"{path.name}: {key}")
    return dict(state)
