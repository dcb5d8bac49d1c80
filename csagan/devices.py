"""Device helpers shared by training, pretraining, sampling and evaluation (no ``.cuda()`` anywhere)."""

from __future__ import annotations

import platform
from pathlib import Path

import torch
from torch import nn

__all__ = ["cpu_name", "module_device", "resolve_device"]


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; otherwise ``torch.device(device)``, checked.

    Raises:
        ValueError: a CUDA device was asked for but CUDA is not available.
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} but CUDA is not available here; use device=cpu (or auto).")
    return dev


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter (or buffer); CPU for a module with neither."""
    for param in module.parameters():
        return param.device
    for buf in module.buffers():
        return buf.device
    return torch.device("cpu")


def cpu_name() -> str:
    """The CPU model as the OS reports it (for benchmark records)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
