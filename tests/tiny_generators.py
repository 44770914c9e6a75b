"""Tiny StyleGAN2 generators (16 px) saved as model folders: a self-conditioned one whose
modes visibly change the image, and a plain one."""

from pathlib import Path

import torch

from ganedit.models.registry import save_pretrained
from ganedit.models.stylegan2 import Generator


def save_tiny_generators(root: Path, attributes=("smile", "yaw")) -> None:
    """`root`/sc: modes `attributes`, offsets drawn so each mode moves the image;
    `root`/plain: no modes. Seeded: the same weights every call."""
    torch.manual_seed(0)
    g = Generator(16, style_dim=16, n_mlp=2, channel_max=16, mode_attributes=list(attributes))
    with torch.no_grad():
        g.input.mode_offsets.normal_(generator=torch.Generator().manual_seed(1))
    g.eval().update_w_avg(n=256, generator=torch.Generator().manual_seed(0))
    save_pretrained(g, root / "sc")
    save_pretrained(Generator(16, style_dim=16, n_mlp=2, channel_max=16).eval(), root / "plain")
