"""GAN training: configs and presets, the train loop, exact resume, multi-process runs, run folders.

* :mod:`csagan.train.config`: :class:`TrainConfig`, presets, :func:`resolve` (config name + preset +
  ``key=value`` overrides → model and train configs).
* :mod:`csagan.train.engine`: :func:`train` (DF-GAN's step with CSA-GAN's objective, Eqs. 22-25).
* :mod:`csagan.train.checkpoint`: atomic checkpoints and random states.
* :mod:`csagan.train.distributed`: ``torchrun`` support (gloo on CPU, NCCL on CUDA).
* :mod:`csagan.train.logging`: ``metrics.jsonl`` / ``metrics.csv`` and the progress bar.
* :mod:`csagan.train.run`: :func:`load_run` (a run folder → generator, text encoder, vocabulary).

The engine and run loaders are imported on first use, so that reading a config (``csagan config show``)
does not build the training machinery.
"""

from __future__ import annotations

from typing import Any

from csagan.train.config import (
    TrainConfig,
    default_preset,
    get_train_preset,
    list_train_presets,
    resolve,
)

__all__ = [
    "LoadedRun",
    "TrainConfig",
    "TrainingDivergedError",
    "default_preset",
    "get_train_preset",
    "list_train_presets",
    "load_run",
    "resolve",
    "train",
]

_LAZY = {
    "train": "csagan.train.engine",
    "TrainingDivergedError": "csagan.train.engine",
    "load_run": "csagan.train.run",
    "LoadedRun": "csagan.train.run",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'csagan.train' has no attribute {name!r}")
