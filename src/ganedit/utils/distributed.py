"""Process groups for torchrun: one place for what training and bank generation both need.

A single process is the default and needs none of this: everything here returns rank 0 of
a world of 1 unless the process was launched by torchrun (WORLD_SIZE > 1).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
import torch.distributed as dist


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def world_info() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless launched by torchrun and initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: str | torch.device) -> tuple[torch.device, int, int]:
    """Join the torchrun process group when launched that way.

    Returns (this process's device, rank, world size); a CUDA device becomes the process's
    local GPU (LOCAL_RANK), as torchrun lays them out."""
    device = torch.device(device)
    if not launched_by_torchrun():
        return device, 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank, world = world_info()
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    return device, rank, world


def barrier() -> None:
    if world_info()[1] > 1:
        dist.barrier()


def on_rank0(fn: Callable[[], object], rank: int, world: int) -> None:
    """Run `fn` on rank 0 only; every rank waits for it and fails if it failed."""
    if world == 1:
        fn()
        return
    error, message = None, [None]
    if rank == 0:
        try:
            fn()
        except Exception as exc:
            error, message = exc, [f"{type(exc).__name__}: {exc}"]
    dist.broadcast_object_list(message, src=0)
    if error is not None:
        raise error
    if message[0] is not None:
        raise RuntimeError(f"rank 0 failed: {message[0]}")


def update(module: torch.nn.Module, optim: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """Backward, average the gradients over processes (data parallel; one all-reduce of all
    of them flattened), then step. In one process: backward and step."""
    optim.zero_grad(set_to_none=True)
    loss.backward()
    _, world = world_info()
    if world > 1:
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()
    optim.step()
