"""Where and how reproducibly things run: device choice and seeding."""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from gsasrec.errors import GSASRecError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


PRECISIONS = ("fp32", "bf16")  # float32, or autocast matrix products to bfloat16
PRECISION_CHOICES = ("auto", *PRECISIONS)  # what --precision takes: auto is bf16 where the hardware has it


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' is CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GSASRecError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    if name.split(":")[0] not in DEVICE_CHOICES:
        raise GSASRecError(f"--device must be one of {', '.join(DEVICE_CHOICES)}, got {name!r}")
    try:
        return torch.device(name)
    except (RuntimeError, ValueError):  # "cpu:-1", "cuda:x"
        raise GSASRecError(f"--device {name!r} is not a device (auto, cpu, cuda or cuda:N)") from None


def fast_bf16(device: torch.device) -> bool:
    """Whether bfloat16 matrix products are native here: a CUDA GPU that supports them, or a CPU with
    AVX-512 BF16 or AMX units (read from /proc/cpuinfo; elsewhere False, so fp32 is kept)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line for line in info if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def is_main_process() -> bool:
    """Rank 0 of a torchrun launch, or the only process: what may write shared files and print, also
    before (or after) the process group exists."""
    return int(os.environ.get("RANK", "0")) == 0


def resolve_precision(name: str, device: torch.device) -> str:
    """The precision to run in: 'auto' is bf16 where fast_bf16(device), else fp32.

    An explicit 'bf16' is kept, with a warning where the hardware has no bf16 units: there bf16 is
    emulated, and a CPU training step measured 12-16x slower than fp32 on an AVX2-only CPU (RESULTS.md).
    """
    if name not in PRECISION_CHOICES:
        raise GSASRecError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {name!r}")
    if name == "auto":
        return "bf16" if fast_bf16(device) else "fp32"
    warn_if_emulated(name, device)
    return name


def warn_if_emulated(precision: str, device: torch.device) -> None:
    """One line on stderr (rank 0) when bf16 would run emulated on this device."""
    if precision == "bf16" and not fast_bf16(device) and is_main_process():
        print(f"warning: --precision bf16 on a {device.type.upper()} without bf16 units runs emulated bf16, "
              "many times slower than fp32 here; --precision auto (or fp32) uses fp32", file=sys.stderr)


def new_seed() -> int:
    return secrets.randbelow(2**31)


def retain_freed_memory() -> None:
    """Ask glibc to keep freed memory for reuse instead of returning it to the OS.

    A CPU training step allocates several buffers of hundreds of MB (the dense logits and their
    gradient); handed back and re-faulted every step, their first touch cost more than the work done in
    them (benchmarks/RESULTS.md). Linux with glibc only; elsewhere this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    trim_threshold, mmap_threshold = -1, -3  # mallopt parameter numbers from <malloc.h>
    libc.mallopt(mmap_threshold, 1 << 30)
    libc.mallopt(trim_threshold, (1 << 31) - 1)


@dataclass
class StopRequests:
    stop: bool = False  # set by SIGTERM or SIGINT (Ctrl-C) while the block runs


@contextmanager
def stop_requests() -> Iterator[StopRequests]:
    """Within the block, SIGTERM and SIGINT only set `.stop`, so that a loop can end at a safe point; the
    previous handlers come back after it. Outside the main thread signals are left alone."""
    requests = StopRequests()

    def request(signum, frame):
        requests.stop = True

    previous = {}
    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, request)
    except ValueError:  # not the main thread
        pass
    try:
        yield requests
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
