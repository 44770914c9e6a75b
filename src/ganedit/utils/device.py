"""Devices named by the user, checked against what this machine has."""

from __future__ import annotations

import torch

from ganedit.errors import UserInputError


def available_devices() -> list[str]:
    """The device strings this machine can run on: cpu, then cuda:k / mps when present."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{k}" for k in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        names.append("mps")
    return names


def resolve_device(device: str | torch.device) -> torch.device:
    """A torch.device that exists here; UserInputError naming the ones that do otherwise."""
    if isinstance(device, torch.device):
        parsed = device
    else:
        try:
            parsed = torch.device(str(device).strip())
        except (RuntimeError, ValueError):
            parsed = None
    if parsed is not None and parsed.type == "cpu":
        return torch.device("cpu")
    have = available_devices()
    if parsed is not None and parsed.type in ("cuda", "mps"):
        index = parsed.index if parsed.index is not None else 0
        name = parsed.type if parsed.type == "mps" else f"cuda:{index}"
        if name in have:
            return parsed
    raise UserInputError(f"expected a device this machine has {have}, received {str(device)!r}")
