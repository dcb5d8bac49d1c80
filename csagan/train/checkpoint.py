"""Atomic checkpoints, RNG-state capture and config comparison for exact ``--resume``.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so that it loads with
``torch.load(weights_only=True)``: model and optimiser state dicts, the GradScaler state, the step,
the position in the data (epoch and batch within the epoch), and the random states (torch CPU and
CUDA, NumPy, Python and the engine's own per-rank ``torch.Generator``) stored as tensors and lists.

Files are written atomically: to a temporary file in the same folder, flushed and fsync'ed, then
``os.replace``'d over the target, so a run killed while saving leaves the previous file intact.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from csagan.atomic import atomic_torch_save, atomic_write_text
from csagan.safe_load import load_torch_file

__all__ = [
    "CHECKPOINT_NAME",
    "GENERATOR_NAME",
    "atomic_save",
    "atomic_write_text",
    "capture_rng_state",
    "config_differences",
    "load_checkpoint",
    "restore_rng_state",
]

CHECKPOINT_NAME = "checkpoint.pt"
GENERATOR_NAME = "generator.pt"


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (tmp file in the same folder, fsync, os.replace)."""
    return atomic_torch_save(obj, path)


def capture_rng_state() -> dict[str, Any]:
    """The global random states as weights-only-loadable values.

    Keys: ``torch`` (ByteTensor), ``cuda`` (list of ByteTensors, empty without CUDA), ``numpy``
    (``[name, state tensor, pos, has_gauss, cached_gaussian]``) and ``python`` (``[version,
    state list, gauss_next]``).
    """
    np_state = cast(tuple[Any, ...], np.random.get_state(legacy=True))
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [
            str(np_state[0]),
            torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
        "python": [int(py_state[0]), list(py_state[1]), py_state[2]],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore the global random states saved by :func:`capture_rng_state`.

    CUDA states are restored only when the same number of CUDA devices is visible.
    """
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by the engine with ``weights_only=True``.

    Raises:
        FileNotFoundError: no such file (says how to start a fresh run instead).
        ValueError: the file is not a csagan training checkpoint.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"checkpoint not found: {p}; start a new run without --resume, or point --out at a run folder "
            "that has a checkpoint.pt."
        )
    obj = load_torch_file(
        p, what="a csagan training checkpoint", map_location=map_location,
        fix=f"copy an earlier one from {p.parent / 'checkpoints'} (kept when keep_checkpoints > 0) over it, or start "
        "a new run folder.",
    )
    if not isinstance(obj, dict) or "format" not in obj or obj.get("format") != "csagan-train-checkpoint":
        raise ValueError(f"{p} is not a csagan training checkpoint (no 'format' marker).")
    return obj


def config_differences(saved: dict[str, Any], current: dict[str, Any], ignore: frozenset[str] = frozenset()) -> list[str]:
    """Fields whose values differ between two flat config dicts, as ``"name: saved -> current"``.

    Fields in ``ignore`` are skipped; a field present on one side only counts as different.
    """
    out: list[str] = []
    for key in sorted(set(saved) | set(current)):
        if key in ignore:
            continue
        a, b = saved.get(key, "<missing>"), current.get(key, "<missing>")
        if isinstance(a, tuple):
            a = list(a)
        if isinstance(b, tuple):
            b = list(b)
        if a != b:
            out.append(f"{key}: {a!r} -> {b!r}")
    return out
