"""Data-parallel training on PyTorch's own engine: torchrun sets the environment, this module joins it.

Every rank holds the whole model and the same shuffled order of users; a global batch is split across
ranks, each rank draws its own negatives, and DDP averages the gradients. Validation, checkpoints and
logs are rank 0's; decisions that end a loop (early stopping, budgets, signals) are made by rank 0 and
broadcast, so all ranks stop at the same step.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class World:
    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def join(device: torch.device) -> World:
    """Join the process group that torchrun describes (WORLD_SIZE > 1); otherwise a world of one.

    gloo on the CPU, NCCL on GPUs (one GPU per rank, by LOCAL_RANK).
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(device=device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        # Ranks on one machine share its cores.
        local = int(os.environ.get("LOCAL_WORLD_SIZE", size))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))
    if not dist.is_initialized():
        init_process_group("nccl" if device.type == "cuda" else "gloo")
    return World(rank=dist.get_rank(), size=dist.get_world_size(), device=device)


def init_process_group(backend: str) -> None:
    """The default process group from torchrun's environment, its keys under a prefix of their own per
    restart round.

    torchrun keeps one store for every round of `--max-restarts`, and the process group writes the same
    keys in each: a restarted rank 0 could read the address a killed rank had published and fail to
    connect to it ("Connection refused" in gloo's connectFullMesh) whenever its peer started later than
    it (tests/test_distributed_resume.py starts one late on purpose).
    """
    store, rank, size = next(dist.rendezvous("env://"))
    round_number = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    dist.init_process_group(backend, store=dist.PrefixStore(f"gsasrec/round-{round_number}", store),
                            rank=rank, world_size=size)


def finish_together(world: World, result):
    """`result`, once every rank has got here. Without this wait a rank that finished first tore its
    process group down while rank 0 was still validating and saving, and gloo aborted it (SIGABRT,
    'terminate called without an active exception') after a run that had succeeded."""
    barrier(world)
    return result


def leave(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def from_main(world: World, value: int) -> int:
    """Rank 0's integer, on every rank (a decision, or the seed when none was given)."""
    if not world.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.int64, device=world.device)
    dist.broadcast(tensor, src=0)
    return int(tensor.item())


def object_from_main(world: World, value):
    """Rank 0's `value` (plain picklable data), on every rank."""
    if not world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(world: World, flag: bool) -> bool:
    """Whether `flag` is true on any rank (a collective: every rank waits here for the others)."""
    if not world.distributed:
        return flag
    tensor = torch.tensor([int(flag)], dtype=torch.int64, device=world.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def mean_over_ranks(world: World, value: float) -> float:
    if not world.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=world.device)
    dist.all_reduce(tensor)
    return tensor.item() / world.size


def gather_at_main(world: World, value) -> list | None:
    """Every rank's `value` (plain data and CPU tensors), in rank order, on rank 0; None on the others."""
    if not world.distributed:
        return [value]
    gathered = [None] * world.size if world.is_main else None
    dist.gather_object(value, gathered, dst=0)
    return gathered


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def launch(nproc: int, argv: list[str], max_restarts: int = 0) -> int:
    """Run `gsasrec <argv>` on nproc local ranks through torchrun; returns its exit code. With max_restarts,
    torchrun starts all ranks again (up to that many times) when one of them fails."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               f"--max-restarts={max_restarts}", "-m", "gsasrec", *argv]
    return subprocess.call(command)
