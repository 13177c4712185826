"""Where and how reproducibly things run: device choice and seeding."""

from __future__ import annotations

import secrets

import torch

from gsasrec.errors import GSASRecError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' is CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GSASRecError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    if name.split(":")[0] not in DEVICE_CHOICES:
        raise GSASRecError(f"--device must be one of {', '.join(DEVICE_CHOICES)}, got {name!r}")
    return torch.device(name)


def new_seed() -> int:
    return secrets.randbelow(2**31)


def seeded_generator(seed: int, device: torch.device) -> torch.Generator:
    """Seeds the global RNG (model initialisation, dropout) and returns a generator on `device`
    for batch order and negatives."""
    torch.manual_seed(seed)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator
