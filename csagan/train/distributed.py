"""Multi-process training helpers (``torchrun``): process group, sharding and gradient averaging.

The engine runs one process per device. ``torchrun --nproc_per_node N`` sets ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`init_distributed` reads them and initialises the
process group (NCCL on CUDA, gloo on the CPU). Without them training runs in one process.

Data-parallel updates: every rank builds the same models from the same seed (and rank 0's
parameters are broadcast to be sure), takes its own shard of the batch, and the gradients are
averaged over the ranks (:func:`average_gradients`) before each optimiser step, which is what
``DistributedDataParallel`` does. It is done explicitly here because one training step calls
the discriminator through two entry points (``D(x)`` and ``D.head``) several times and takes a
double backward for MA-GP (Eq. 22), a pattern DDP's one-forward-one-backward hooks do not
support. Buffers (BatchNorm statistics) are broadcast from rank 0 after each step
(:func:`broadcast_buffers`), as DDP's ``broadcast_buffers=True`` does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "DistInfo",
    "average_gradients",
    "barrier",
    "broadcast_buffers",
    "broadcast_parameters",
    "cleanup_distributed",
    "gather_objects",
    "init_distributed",
    "read_env",
    "shard_batches",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size`` (``local_rank`` picks its GPU)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes files and logs."""
        return self.rank == 0


def read_env(environ: Mapping[str, str] | None = None) -> DistInfo:
    """Read ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (set by ``torchrun``); defaults 0, 1, 0.

    Raises:
        ValueError: the variables are not integers or are inconsistent.
    """
    env = os.environ if environ is None else environ
    try:
        rank = int(env.get("RANK", "0"))
        world = int(env.get("WORLD_SIZE", "1"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ValueError(
            f"RANK/WORLD_SIZE/LOCAL_RANK must be integers (set by torchrun), got {exc}; "
            "launch with `torchrun --nproc_per_node N ...` or unset them."
        ) from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ValueError(f"invalid torchrun environment: RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}.")
    return DistInfo(rank, world, local)


def init_distributed(device: torch.device, environ: Mapping[str, str] | None = None) -> DistInfo:
    """Initialise the default process group when launched by ``torchrun`` (no-op otherwise).

    Uses NCCL for CUDA devices and gloo for the CPU; ``MASTER_ADDR``/``MASTER_PORT`` come from
    the environment (``env://``). A group that is already initialised is reused.
    """
    info = read_env(environ)
    if not info.distributed or dist.is_initialized():
        return info
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)
    return info


def cleanup_distributed() -> None:
    """Destroy the default process group if one is initialised."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for all ranks (no-op in one process)."""
    if info.distributed and dist.is_initialized():
        dist.barrier()


def shard_batches(order: list[int], batch_size: int, info: DistInfo, start_batch: int = 0) -> list[list[int]]:
    """This rank's batches of one epoch, from the epoch's global item ``order``.

    Global batch ``b`` covers ``order[b·W·B : (b+1)·W·B]`` (W ranks, B per rank); rank ``r``
    takes its ``r``-th slice of B items. The last incomplete global batch is dropped, so every
    rank gets the same number of batches. Batches before ``start_batch`` are skipped (resume).
    """
    per_step = batch_size * info.world_size
    n_batches = len(order) // per_step
    out: list[list[int]] = []
    for b in range(start_batch, n_batches):
        base = b * per_step + info.rank * batch_size
        out.append(order[base : base + batch_size])
    return out


def _flat_grads(params: list[nn.Parameter]) -> list[torch.Tensor]:
    return [p.grad for p in params if p.grad is not None]


def average_gradients(params: Iterable[nn.Parameter], info: DistInfo) -> None:
    """All-reduce and average the gradients of ``params`` over the ranks (no-op in one process).

    Gradients are flattened into one buffer per dtype so there is one collective per call.
    """
    if not info.distributed:
        return
    grads = _flat_grads([p for p in params if p.requires_grad])
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for g in grads:
        by_dtype.setdefault(g.dtype, []).append(g)
    for group in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in group])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= info.world_size
        offset = 0
        for g in group:
            n = g.numel()
            g.copy_(flat[offset : offset + n].view_as(g))
            offset += n


def broadcast_parameters(module: nn.Module, info: DistInfo) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if not info.distributed:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def broadcast_buffers(module: nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (e.g. BatchNorm running statistics) to every rank."""
    if not info.distributed:
        return
    with torch.no_grad():
        for b in module.buffers():
            dist.broadcast(b.data, src=0)


def gather_objects(obj: object, info: DistInfo) -> list[object]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` in one process."""
    if not info.distributed:
        return [obj]
    out: list[object] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out
