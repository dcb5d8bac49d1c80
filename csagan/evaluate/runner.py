"""One evaluation, from a run folder to a report: :func:`run` (config, paths) and :func:`evaluate_run`."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from csagan.devices import resolve_device
from csagan.evaluate.config import EvalConfig, EvalPaths, resolve_evaluator_path
from csagan.evaluate.plan import caption_plan, check_counts, generate_images, real_images, test_split
from csagan.evaluate.report import EvaluationResult, build_report
from csagan.evaluate.scores import evaluator_metrics, inception_metrics, rprec_metric
from csagan.evaluator import load_evaluator
from csagan.metrics.inception_fid import FIDInceptionV3
from csagan.metrics.stats import load_stats
from csagan.sample import DEFAULT_TRUNCATION
from csagan.train.run import load_run

__all__ = ["evaluate_run", "run"]

_INCEPTION_METRICS = frozenset({"fid", "is"})
_EVALUATOR_METRICS = frozenset({"align", "dfid", "dis"})


class _Timer:
    """Wall-clock seconds per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)


def run(config: EvalConfig, paths: EvalPaths, *, progress: bool = True) -> EvaluationResult:
    """Generate from the test captions of ``paths.data_dir`` with the run in ``paths.run_dir`` and score
    (module docstring of :mod:`csagan.evaluate`).

    Everything that can be missing (run, data, Inception weights, statistics file, evaluator)
    is loaded and every count is checked before the first image is generated.

    Raises:
        FileNotFoundError: run, data, weights, statistics or evaluator missing.
        ValueError: too few images for a metric, mismatched vocabulary or labels, no ToyBirds ground truth.
    """
    chosen = config.metrics
    dev = resolve_device(config.device)
    timer = _Timer()
    run_path, data_dir = Path(paths.run_dir), paths.data_dir
    with timer("load"):
        loaded = load_run(run_path, map_location=dev)
        dataset = test_split(data_dir, loaded, config.seed)
        plan = caption_plan(len(dataset), dataset.captions_per_image, config.passes, config.seed, config.max_images)
        check_counts(chosen, len(plan), config.is_splits, config.rprec_candidates)
        if "align" in chosen and dataset.attributes is None:
            raise ValueError(
                f"metric 'align' needs ToyBirds ground truth ({Path(data_dir) / 'attributes.jsonl'} not found)"
            )
        inception = None
        if _INCEPTION_METRICS & set(chosen):
            weights = "auto" if paths.fid_weights is None else paths.fid_weights
            inception = FIDInceptionV3(weights, protocol=config.protocol).to(dev)  # type: ignore[arg-type]
        stats_path = Path(paths.fid_stats) if paths.fid_stats is not None and "fid" in chosen else None
        stats = None if stats_path is None else load_stats(stats_path)
        ev = None
        if _EVALUATOR_METRICS & set(chosen):
            ev = load_evaluator(resolve_evaluator_path(paths.evaluator), map_location=dev)
    captions = [dataset.caption_texts(int(i))[int(k)] for i, k in zip(plan.items, plan.captions, strict=True)]
    with timer("generate"):
        images = generate_images(loaded, captions, seed=config.seed, truncation=config.truncation,
                                 batch_size=config.batch_size, device=dev, progress=progress)  # fmt: skip
    real = None
    if ("fid" in chosen and stats is None) or "dfid" in chosen:
        with timer("real_images"):
            real = real_images(dataset, config.max_images, config.seed, config.batch_size)
    values: dict[str, Any] = {}
    if inception is not None:
        with timer("inception_metrics"):
            values.update(inception_metrics(inception, images, real, stats, stats_path, config,
                                            image_size=loaded.model_config.image_size, device=dev,
                                            progress=progress))  # fmt: skip
    if "rprec" in chosen:
        with timer("rprec"):
            values["rprec"] = rprec_metric(run_path, loaded, images, captions, config, dev)
    if ev is not None:
        with timer("evaluator_metrics"):
            values.update(evaluator_metrics(ev, images, real, dataset, plan, config))
    report = build_report(
        run_path, loaded, data_dir, dataset, plan, config, values, timer.seconds,
        inception=None if inception is None else inception.weights_info(),
        evaluator=None if ev is None else str(resolve_evaluator_path(paths.evaluator)), device=dev,
    )  # fmt: skip
    return EvaluationResult(report=report, images=images, captions=captions, real_images=real, plan=plan)


def evaluate_run(
    run_dir: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    metrics: str | Sequence[str] = ("fid", "is"),
    *,
    passes: int = 1,
    max_images: int | None = None,
    seed: int = 0,
    truncation: float | None = DEFAULT_TRUNCATION,
    batch_size: int = 50,
    fid_weights: str | os.PathLike[str] | None = None,
    fid_stats: str | os.PathLike[str] | None = None,
    protocol: str = "standard",
    is_splits: int = 10,
    rprec_candidates: int = 100,
    rprec_rounds: int = 10,
    evaluator: str | os.PathLike[str] | None = None,
    sanity_images: int = 1000,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> EvaluationResult:
    """:func:`run` with the fields of :class:`EvalConfig` and :class:`EvalPaths` as arguments
    (``metrics`` may be ``"fid,is,..."``); see there for each one."""
    config = EvalConfig(
        metrics=tuple(metrics.split(",")) if isinstance(metrics, str) else tuple(metrics), passes=passes,
        max_images=max_images, seed=seed, truncation=truncation, batch_size=batch_size,
        protocol=protocol,  # type: ignore[arg-type]
        is_splits=is_splits, rprec_candidates=rprec_candidates, rprec_rounds=rprec_rounds,
        sanity_images=sanity_images, device=str(device),
    )  # fmt: skip
    paths = EvalPaths(run_dir, data_dir, fid_weights=fid_weights, fid_stats=fid_stats, evaluator=evaluator)
    return run(config, paths, progress=progress)
