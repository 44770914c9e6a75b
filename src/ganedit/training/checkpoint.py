"""Resumable training checkpoints: model and optimizer tensors in safetensors, the rest in JSON.

Nothing is pickled: the optimizer state is flattened to named tensors plus a JSON skeleton."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ganedit.utils.bounded import load_json_bounded
from ganedit.utils.files import atomic_dir, readable_by_all


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, skeleton = {}, {"param_groups": state["param_groups"], "state": {}}
    for pid, entries in state["state"].items():
        skeleton["state"][str(pid)] = {}
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{name}"] = value.detach().cpu().contiguous()
                skeleton["state"][str(pid)][name] = {"tensor": f"{pid}.{name}"}
            else:
                skeleton["state"][str(pid)][name] = {"value": value}
    return tensors, skeleton


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], skeleton: dict) -> dict:
    state = {}
    for pid, entries in skeleton["state"].items():
        state[int(pid)] = {
            name: tensors[e["tensor"]] if "tensor" in e else e["value"]
            for name, e in entries.items()
        }
    return {"state": state, "param_groups": skeleton["param_groups"]}


def save_checkpoint(
    directory: str | Path,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    meta: dict,
) -> None:
    """Write every module's and optimizer's state plus `meta` (step, config...) atomically."""
    with atomic_dir(directory, overwrite=True, what="training checkpoint") as tmp:
        for name, module in modules.items():
            state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
            save_file(state, str(tmp / f"{name}.safetensors"))
            readable_by_all(tmp / f"{name}.safetensors")
        skeletons = {}
        for name, opt in optimizers.items():
            tensors, skeletons[name] = _flatten_optimizer(opt.state_dict())
            save_file(tensors, str(tmp / f"{name}.optim.safetensors"))
            readable_by_all(tmp / f"{name}.optim.safetensors")
        (tmp / "state.json").write_text(
            json.dumps({"meta": meta, "optimizers": skeletons}, indent=1)
        )


def load_checkpoint(
    directory: str | Path,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
) -> dict:
    """Restore states in place; returns the saved `meta`."""
    directory = Path(directory)
    saved = load_json_bounded(directory / "state.json", what="a training checkpoint's state")
    for name, module in modules.items():
        module.load_state_dict(load_file(str(directory / f"{name}.safetensors")))
    for name, opt in optimizers.items():
        tensors = load_file(str(directory / f"{name}.optim.safetensors"))
        opt.load_state_dict(_unflatten_optimizer(tensors, saved["optimizers"][name]))
    return saved["meta"]


def same_config(saved: dict, cfg, free: tuple[str, ...] = ()) -> bool:
    """Whether a checkpoint's saved config is `cfg` (a dataclass instance).

    Fields added to the dataclass after the checkpoint was written count as their defaults,
    so runs started with an older version keep resuming; `free` fields may differ (say, the
    iteration count of a run being extended).
    """
    # Compared as JSON sees them: a saved tuple field comes back as a list.
    defaults = _as_json(dataclasses.asdict(type(cfg)()))
    old, new = {**defaults, **saved}, _as_json(dataclasses.asdict(cfg))
    return {k: v for k, v in old.items() if k not in free} == {
        k: v for k, v in new.items() if k not in free
    }


def _as_json(value: dict) -> dict:
    return json.loads(json.dumps(value))
