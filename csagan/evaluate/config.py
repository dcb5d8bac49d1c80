"""What an evaluation is: the metrics and the protocol (:class:`EvalConfig`, with named presets) and
the files it reads (:class:`EvalPaths`).

Presets (:data:`EVAL_PRESETS`, ``csagan config show-eval``): ``paper`` is the papers' protocol (FID and
IS on about 10 passes over the test captions, every image); ``study`` is the book's reproduction study
(domain FID / IS, attribute accuracy and R-precision on a seeded 1,000-image subset, one pass);
``quick`` a first look on a CPU (FID and IS on 500 images).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from csagan.evaluator import TRAIN_COMMAND
from csagan.sample import DEFAULT_TRUNCATION
from csagan.settings import Settings

__all__ = [
    "DEFAULT_EVALUATOR_NAME",
    "EVAL_PRESETS",
    "METRICS",
    "EvalConfig",
    "EvalPaths",
    "default_evaluator_path",
    "eval_config",
    "parse_metrics",
    "resolve_evaluator_path",
]

METRICS: tuple[str, ...] = ("fid", "is", "rprec", "align", "dfid", "dis")
"""Metric names accepted by :class:`EvalConfig` / ``--metrics``."""
DEFAULT_EVALUATOR_NAME = "evaluator_toybirds.pt"


def parse_metrics(metrics: str | Sequence[str]) -> tuple[str, ...]:
    """``"fid,is"`` or ``["fid", "is"]`` → validated names in :data:`METRICS` order.

    Raises:
        ValueError: no name, or an unknown name (the message lists the valid ones).
    """
    names = [m.strip().lower() for m in (metrics.split(",") if isinstance(metrics, str) else metrics)]
    names = [m for m in names if m]
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
    if not names:
        raise ValueError(f"no metric given; choose from {', '.join(METRICS)}")
    return tuple(m for m in METRICS if m in names)


def default_evaluator_path() -> Path:
    """Where a shipped ToyBirds evaluator lives: ``csagan/assets/evaluator_toybirds.pt``."""
    return Path(__file__).resolve().parents[1] / "assets" / DEFAULT_EVALUATOR_NAME


def resolve_evaluator_path(path: str | os.PathLike[str] | None) -> Path:
    """``path``, or the shipped default when ``None``.

    Raises:
        FileNotFoundError: the file does not exist (the message names the training command).
    """

    target = default_evaluator_path() if path is None else Path(path)
    if not target.is_file():
        where = "the default location " if path is None else ""
        raise FileNotFoundError(
            f"ToyBirds attribute evaluator not found at {where}{target}; train one with "
            f"`{TRAIN_COMMAND}` and pass it with --evaluator PATH (metrics align, dfid, dis need it)"
        )
    return target


@dataclass(frozen=True)
class EvalConfig(Settings):
    """How a run is evaluated (module docstring of :mod:`csagan.evaluate`).

    Attributes:
        metrics: names from :data:`METRICS` (any order; kept in :data:`METRICS` order).
        passes: passes over the test captions (the paper: ~10).
        max_images: score a seeded subset of this many planned images (and at most this many real
            test images as reference); ``None`` = all.
        seed: seed of the caption choice, the noise, the R-precision draws and the sanity bounds.
        truncation: noise truncation (DF-GAN's 0.88); ``None`` = plain N(0, 1).
        batch_size: images per forward pass everywhere.
        protocol: ``"standard"`` (pytorch-fid) or ``"dfgan"`` (DF-GAN's non-standard network).
        is_splits: splits of IS and domain IS (Eq. 26).
        rprec_candidates, rprec_rounds: R-precision's captions per image and repetitions.
        sanity_images: real test images used for the alignment's sanity bounds.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    """

    metrics: tuple[str, ...] = ("fid", "is")
    passes: int = 1
    max_images: int | None = None
    seed: int = 0
    truncation: float | None = DEFAULT_TRUNCATION
    batch_size: int = 50
    protocol: Literal["standard", "dfgan"] = "standard"
    is_splits: int = 10
    rprec_candidates: int = 100
    rprec_rounds: int = 10
    sanity_images: int = 1000
    device: str = "auto"

    settings_label: ClassVar[str] = "evaluation setting"

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", parse_metrics(self.metrics))
        self.check_fields()
        for name in ("passes", "batch_size", "is_splits", "rprec_rounds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_images is not None and self.max_images < 2:
            raise ValueError(f"max_images={self.max_images}: the metrics need at least 2 images")



@dataclass(frozen=True)
class EvalPaths:
    """The files an evaluation reads.

    Attributes:
        run_dir: a run folder written by ``csagan train``.
        data_dir: the dataset root the run was trained on (its test split is used).
        fid_weights: Inception weights file (default: ``$CSAGAN_FID_WEIGHTS``, then the torch hub
            cache; see :func:`csagan.metrics.inception_fid.resolve_weights_path`).
        fid_stats: ``.npz`` reference statistics (``csagan fid-stats``); default: the test images.
        evaluator: ToyBirds evaluator file (default :func:`default_evaluator_path`).
    """

    run_dir: str | os.PathLike[str]
    data_dir: str | os.PathLike[str]
    fid_weights: str | os.PathLike[str] | None = None
    fid_stats: str | os.PathLike[str] | None = None
    evaluator: str | os.PathLike[str] | None = None


#: The named protocols (module docstring).
EVAL_PRESETS: dict[str, EvalConfig] = {
    "paper": EvalConfig(metrics=("fid", "is"), passes=10),
    "study": EvalConfig(metrics=("dfid", "dis", "align", "rprec"), max_images=1000),
    "quick": EvalConfig(metrics=("fid", "is"), max_images=500),
}


def eval_config(preset: str | None = None, overrides: Sequence[str] = ()) -> EvalConfig:
    """The preset ``preset`` of :data:`EVAL_PRESETS` (``None``: the field defaults) with ``key=value``
    overrides (``metrics=fid,is``, ``max_images=none``, ...).

    Raises:
        ValueError: an unknown preset or field, or a value of the wrong type.
    """
    if preset is not None and preset not in EVAL_PRESETS:
        raise ValueError(f"unknown evaluation preset {preset!r}; choose from {list(EVAL_PRESETS)}.")
    base = EvalConfig() if preset is None else EVAL_PRESETS[preset]
    return base.replace(**EvalConfig.parse_sets(overrides))
