"""Training on several processes (torchrun): join the job, wrap the networks in DDP, check the ranks agree.

torchrun sets RANK, LOCAL_RANK, WORLD_SIZE and MASTER_ADDR/PORT; :func:`init_distributed` joins the job
(NCCL on CUDA, gloo on the CPU), :func:`wrap_distributed` wraps each trainable network of a lesson model in
``DistributedDataParallel`` (lessons call their networks through ``model.nets``, so the wrappers are
used), and :func:`assert_in_sync` checks at the end that every rank holds the same weights.
"""
from __future__ import annotations

import atexit
import os
from typing import Any

import torch

__all__ = ["dist_info", "init_distributed", "wrap_distributed", "unwrap", "unwrap_distributed", "assert_in_sync"]


def dist_info() -> tuple[int, int]:
    """(rank, world_size) of this process; (0, 1) outside torchrun."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Join the torchrun job this process belongs to (no-op outside torchrun); return (rank, world_size).

    torchrun sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR/PORT; NCCL on CUDA, gloo on the CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.distributed.init_process_group(backend=backend)
        # leave the group while the interpreter is still whole: a gloo group left to interpreter shutdown can abort
        # the process after training has finished ("terminate called without an active exception", SIGABRT)
        atexit.register(_leave_group)
    return dist_info()


def _leave_group() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def wrap_distributed(model) -> None:
    """Wrap each network in DistributedDataParallel (gradients averaged over ranks at each backward).

    Models call their networks through ``self.nets[name]``, so they run unchanged; DDP broadcasts rank 0's
    initial weights, so every rank starts identical. Networks without trainable parameters stay as they are.
    """
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [model.device.index] if model.device.type == "cuda" else None
    for name, net in list(model.nets.items()):
        if isinstance(net, DDP) or not any(p.requires_grad for p in net.parameters()):
            continue
        model.nets[name] = DDP(net, device_ids=ids, broadcast_buffers=True)
    model.on_nets_wrapped()


def unwrap(net: torch.nn.Module) -> torch.nn.Module:
    """The network inside a DistributedDataParallel wrapper (or ``net`` itself)."""
    return net.module if isinstance(net, torch.nn.parallel.DistributedDataParallel) else net


def unwrap_distributed(model) -> None:
    """Put the bare networks back into ``model.nets`` after training, so evaluation and export see their own
    keys (no ``module.`` prefix); the inverse of :func:`wrap_distributed`."""
    model.nets = {name: unwrap(net) for name, net in model.nets.items()}
    model.on_nets_wrapped()


def assert_in_sync(model) -> None:
    """Check that every rank holds the same weights (DDP's promise); raise if one drifted."""
    sums = [float(sum(p.detach().double().sum() for p in net.parameters())) for net in model.nets.values()]
    everyone: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(everyone, sums)
    if any(other != everyone[0] for other in everyone[1:]):
        raise RuntimeError(f"ranks hold different weights after training: {everyone}")
