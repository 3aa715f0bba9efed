"""Training on several processes (``torchrun``): the process group and the few collective
operations the engine needs.

``torchrun --nproc_per_node=N -m ponyclassifier train DATA --out MODEL ...`` starts N
copies of the command line with ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set;
:func:`init_from_env` joins them into one process group (NCCL on CUDA, gloo on CPU).
Multi-node runs use torchrun's usual ``--nnodes``/``--rdzv-*`` flags; nothing here changes.

How the work is shared (see :class:`~ponyclassifier.core.engine.Trainer`): every process
reads the same folder and computes the same split; each global batch of ``batch_size``
images (the same on every process, from the same seeded permutation) is dealt out, image
``i`` of it to process ``i mod N``, and DistributedDataParallel averages the gradients. So
N processes take the same steps, on the same images, as one process with that batch size,
and learn the same model (up to float rounding, dropout masks and, on the CPU, the
BatchNorm statistics of each process's share of a batch; on CUDA BatchNorm is synchronised).
Frozen-base features are computed by each process for its share of the images and then
gathered, so the base runs over each image once in all.

The GUI never uses this module: it trains in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


class DistributedError(Exception):
    pass


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ collectives
    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over all processes, in place; a no-op in one process."""
        if self.distributed:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def gather_cat(self, t: torch.Tensor) -> torch.Tensor:
        """Concatenate each process's ``t`` (dim 0, lengths may differ) in rank order."""
        if not self.distributed:
            return t
        n = torch.tensor([t.shape[0]], device=t.device, dtype=torch.long)
        sizes = [torch.zeros_like(n) for _ in range(self.size)]
        dist.all_gather(sizes, n)
        sizes = [int(s) for s in sizes]
        pad = max(sizes)
        padded = torch.zeros((pad, *t.shape[1:]), dtype=t.dtype, device=t.device)
        padded[: t.shape[0]] = t
        parts = [torch.zeros_like(padded) for _ in range(self.size)]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([p[:s] for p, s in zip(parts, sizes)])

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every process."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def any(self, flag: bool, device: torch.device | str = "cpu") -> bool:
        """True on every process if it is true on any."""
        if not self.distributed:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        return bool(self.sum_(t).item() > 0)

    def merge_dicts(self, d: dict) -> dict:
        """Every process's ``d`` merged (small dicts: the unreadable files each one met)."""
        if not self.distributed:
            return d
        parts: list = [None] * self.size
        dist.all_gather_object(parts, d)
        merged: dict = {}
        for part in parts:
            merged.update(part or {})
        return merged


SINGLE = World()


def env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init_from_env(device: str = "auto") -> World:
    """Join the process group torchrun describes in the environment (one process: SINGLE)."""
    size = env_world_size()
    if size <= 1:
        return SINGLE
    if not dist.is_available():
        raise DistributedError("this PyTorch build has no torch.distributed; train in one process")
    try:
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise DistributedError("WORLD_SIZE is set but RANK is not: start several processes with torchrun") from None
    use_cuda = device != "cpu" and not device.startswith("mps") and torch.cuda.is_available()
    if use_cuda:
        if local >= torch.cuda.device_count():
            raise DistributedError(f"process {rank} wants GPU cuda:{local}, but this machine has "
                                   f"{torch.cuda.device_count()}; use --nproc_per_node up to that")
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return World(rank=rank, size=size, local_rank=local)


def shutdown() -> None:
    """Leave the process group together. A process that is done early (not rank 0, which
    still saves and prints) must not tear its connections down while another still uses
    them: that aborted it ("terminate called without an active exception", SIGABRT) now and
    then. So every process first waits at a barrier, then all destroy the group."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        dist.barrier()
    except Exception:  # noqa: BLE001 (another process failed or is gone: leave anyway)
        pass
    finally:
        dist.destroy_process_group()
