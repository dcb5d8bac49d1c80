"""Generate images from the test captions of a dataset and score them (``csagan evaluate``).

One job: a trained run folder (:func:`csagan.train.run.load_run`) plus a dataset root in, a
JSON-able report out. The metrics, each computed by the function that defines it:

========  =====================================================================================
``fid``   FID, Eq. (27), on the FID Inception's pool features
          (:func:`csagan.metrics.fid.fid_from_features`), against ``.npz`` reference statistics
          (``csagan fid-stats``) or the test images themselves.
``is``    IS, Eq. (26), over ``is_splits`` splits of the same network's 1008-way unbiased
          logits (:func:`csagan.metrics.inception_score.inception_score`).
``rprec`` R-precision with the run's own DAMSM encoders
          (:func:`csagan.metrics.rprecision.r_precision`).
``align`` ToyBirds attribute accuracy with its sanity bounds
          (:func:`csagan.evaluator.evaluate_alignment`, :func:`~csagan.evaluator.sanity_bounds`).
``dfid``  Eq. (27) on the ToyBirds evaluator's features (:func:`csagan.evaluator.domain_fid`).
``dis``   Eq. (26) on the evaluator's species head (:func:`csagan.evaluator.domain_is`).
========  =====================================================================================

Protocol (DF-GAN's, which CSA-GAN follows): ``passes`` passes over the test split; in pass
``p`` every test image ``i`` gives one generated image, from one of its ``N`` captions drawn
uniformly with ``numpy.random.default_rng([seed, p])`` (:func:`caption_plan`). Noise is DF-GAN's
truncated normal (:func:`csagan.sample.truncated_noise`, ``truncation`` 0.88). The paper's
numbers use about 10 passes (~29k images on CUB); on a CPU use ``max_images`` to score a seeded
random subset of the planned images. Generated and real images are quantised to ``uint8`` as
PNG files would store them (:func:`csagan.metrics.reference.quantize_images`) and kept in
memory (3·S² bytes each: 29k images at 256 px take about 5.7 GB).

Honest labels: the report names the Inception weights file and its SHA-256, and says whether it
is the published one (``pt_inception-2015-12-05-6726825d.pth``: SHA-256 starting with
``6726825d``). With any other file (e.g. test-made random weights) the ``fid`` entry is labelled
a Fréchet distance on non-standard features, never an FID comparable with published numbers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from csagan import __version__
from csagan.atomic import atomic_write_text
from csagan.damsm_io import load_damsm, vocab_to_list
from csagan.data.datasets import TextImageDataset
from csagan.devices import resolve_device
from csagan.evaluator import (
    TRAIN_COMMAND,
    caption_mentions,
    domain_fid,
    domain_is,
    evaluate_alignment,
    load_evaluator,
    sanity_bounds,
)
from csagan.metrics.fid import extract_features, fid_from_features
from csagan.metrics.inception_fid import FIDInceptionV3
from csagan.metrics.inception_score import inception_score
from csagan.metrics.reference import iter_split_images, quantize_images, sample_items
from csagan.metrics.rprecision import r_precision
from csagan.metrics.stats import load_stats
from csagan.sample import DEFAULT_TRUNCATION, encode_captions, sample_images
from csagan.train.run import load_run



__all__ = [
    "DEFAULT_EVALUATOR_NAME",
    "METRICS",
    "CaptionPlan",
    "EvaluationResult",
    "caption_plan",
    "default_evaluator_path",
    "evaluate_run",
    "format_summary",
    "generate_images",
    "parse_metrics",
    "resolve_evaluator_path",
]

METRICS: tuple[str, ...] = ("fid", "is", "rprec", "align", "dfid", "dis")
"""Metric names accepted by :func:`evaluate_run` / ``--metrics``."""
_INCEPTION_METRICS = frozenset({"fid", "is"})
_EVALUATOR_METRICS = frozenset({"align", "dfid", "dis"})
DEFAULT_EVALUATOR_NAME = "evaluator_toybirds.pt"
REPORT_FORMAT = "csagan-evaluation"
_REPORT_VERSION = 1


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


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
    return Path(__file__).resolve().parent / "assets" / DEFAULT_EVALUATOR_NAME


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
class CaptionPlan:
    """Which test image and caption each generated image comes from (row ``j`` = image ``j``)."""

    items: np.ndarray  # [M] index of the test image
    captions: np.ndarray  # [M] index of its caption, 0..N-1
    passes: np.ndarray  # [M] pass over the test split
    n_passes: int

    def __len__(self) -> int:
        return int(self.items.shape[0])


def caption_plan(
    n_items: int, captions_per_image: int, passes: int = 1, seed: int = 0, max_images: int | None = None
) -> CaptionPlan:
    """The evaluation protocol's (image, caption) pairs (module docstring).

    ``passes × n_items`` pairs, pass by pass; with ``max_images`` a seeded random subset of that
    many pairs (kept in pass order).

    Raises:
        ValueError: ``passes`` < 1, ``max_images`` < 2, or an empty split.
    """
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    if n_items < 1 or captions_per_image < 1:
        raise ValueError(f"the test split has {n_items} images with {captions_per_image} captions each")
    if max_images is not None and max_images < 2:
        raise ValueError(f"max_images={max_images}: the metrics need at least 2 images")
    items = np.tile(np.arange(n_items), passes)
    pass_of = np.repeat(np.arange(passes), n_items)
    caps = np.concatenate(
        [np.random.default_rng([seed, p]).integers(0, captions_per_image, size=n_items) for p in range(passes)]
    )
    if max_images is not None and max_images < len(items):
        keep = np.sort(np.random.default_rng([seed, passes, max_images]).choice(len(items), max_images, replace=False))
        items, pass_of, caps = items[keep], pass_of[keep], caps[keep]
    return CaptionPlan(items=items, captions=caps, passes=pass_of, n_passes=passes)


def _check_counts(chosen: Sequence[str], n: int, is_splits: int, rprec_candidates: int) -> None:
    """Fail before generating when the plan is too small for a requested metric."""
    if {"is", "dis"} & set(chosen) and not 1 <= is_splits <= n:
        raise ValueError(
            f"IS over {is_splits} splits needs at least {is_splits} generated images, the plan has {n}; "
            "generate more (--passes / --max-images) or lower --is-splits"
        )
    if "rprec" in chosen and not 2 <= rprec_candidates <= n:
        raise ValueError(
            f"R-precision among {rprec_candidates} captions needs at least {rprec_candidates} generated images, "
            f"the plan has {n}; generate more or lower --rprec-candidates (2 at least)"
        )


def _test_split(data_dir: str | os.PathLike[str], run: Any, seed: int) -> Any:
    """The test split at the generator's size (``eval`` transform), checked against the run's vocabulary."""

    dataset = TextImageDataset(
        Path(data_dir), "test", image_size=run.model_config.image_size, transform="eval", seed=seed
    )
    if vocab_to_list(dataset.vocab) != list(run.vocab):
        raise ValueError(
            f"the dataset at {data_dir} has a vocabulary of {dataset.n_words} words that differs from the run's "
            f"({len(run.vocab)} words): evaluate a run on the dataset it was trained on"
        )
    return dataset


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


def _chunk_seed(seed: int, chunk: int) -> int:
    return int(np.random.SeedSequence([seed, chunk]).generate_state(1, dtype=np.uint64)[0] & 0x7FFF_FFFF_FFFF_FFFF)


def generate_images(
    run: Any,
    captions: Sequence[str],
    *,
    seed: int = 0,
    truncation: float | None = DEFAULT_TRUNCATION,
    batch_size: int = 50,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> Tensor:
    """One image per caption with :func:`csagan.sample.sample_images`, as ``uint8`` [M, 3, S, S].

    Chunk ``c`` of ``batch_size`` captions draws its noise from a generator seeded by
    ``(seed, c)``, so the images depend on ``seed`` and ``batch_size`` only.
    """
    from tqdm import tqdm


    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    parts: list[Tensor] = []
    with tqdm(total=len(captions), desc="generate", unit="img", disable=not progress) as bar:
        for c, start in enumerate(range(0, len(captions), batch_size)):
            texts = list(captions[start : start + batch_size])
            result = sample_images(
                run.generator, run.text_encoder, run.vocab, texts, n_per_caption=1, truncation=truncation,
                seed=_chunk_seed(seed, c), device=device, batch_size=batch_size,
            )  # fmt: skip
            parts.append(quantize_images(result.images))
            bar.update(len(texts))
    if not parts:
        raise ValueError("no captions to generate from")
    return torch.cat(parts)


def _real_images(dataset: Any, max_images: int | None, seed: int, batch_size: int) -> Tensor:
    """The test images (or a seeded subset of ``max_images``) as ``uint8``, eval transform."""

    items = [(int(i), 0) for i in sample_items(len(dataset), max_images, seed)]
    return torch.cat(list(iter_split_images(dataset, items, batch_size)))


def _float_batches(images: Tensor, batch_size: int) -> Iterator[Tensor]:
    """``uint8`` images → [−1, 1] float batches (for the DAMSM image encoder)."""
    for batch in torch.split(images, batch_size):
        yield batch.float().div(127.5).sub(1.0)


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def _labels(info: Mapping[str, Any]) -> tuple[bool, str, str]:
    """(standard?, FID label, IS label) from :meth:`FIDInceptionV3.weights_info`."""
    if info["is_published_weights"] and info["protocol"] == "standard":
        return (
            True,
            "FID (Eq. 27) with the standard pytorch-fid Inception weights",
            "IS (Eq. 26) from the standard ImageNet Inception (the CUB papers' IS uses a CUB-fine-tuned one)",
        )
    if info["is_published_weights"]:
        return (
            False,
            "DF-GAN-protocol FID (torchvision ImageNet Inception): not comparable with pytorch-fid FIDs",
            "IS from torchvision's ImageNet Inception (DF-GAN protocol): not the standard IS network",
        )
    weights = info["weights_id"]
    return (
        False,
        f"Fréchet distance on NON-STANDARD Inception weights ({weights}): not an FID, not comparable",
        f"Inception Score on NON-STANDARD Inception weights ({weights}): not comparable with published IS",
    )


def _reference_entry(stats: Any, stats_path: Path | None, n_real: int, image_size: int) -> dict[str, Any]:
    if stats is None:
        return {"source": "test split", "num_images": n_real, "image_size": image_size, "transform": "eval"}
    entry: dict[str, Any] = {
        "source": str(stats_path),
        "num_images": stats.num_images,
        "protocol": stats.protocol,
        "weights_id": stats.weights_id,
    }
    if "unknown" in (stats.protocol, stats.weights_id):
        entry["note"] = (
            "the statistics file carries no network label (e.g. a pytorch-fid or DF-GAN file): it must have "
            "been computed with the same Inception weights and protocol"
        )
    return entry


def _inception_metrics(
    model: FIDInceptionV3,
    images: Tensor,
    real: Tensor | None,
    stats: Any,
    stats_path: Path | None,
    chosen: Sequence[str],
    opts: Mapping[str, Any],
) -> dict[str, Any]:
    """``fid`` (Eq. 27) and/or ``is`` (Eq. 26) on one pass of the Inception network."""

    bs, dev, progress = opts["batch_size"], opts["device"], opts["progress"]
    gen = extract_features(images, model, bs, dev, progress, with_logits="is" in chosen)
    standard, fid_label, is_label = _labels(model.weights_info())
    out: dict[str, Any] = {}
    if "fid" in chosen:
        if stats is None:
            assert real is not None
            ref: Any = extract_features(real, model, bs, dev, progress)
        else:
            ref = stats
        report = fid_from_features(gen, ref)
        n_real = 0 if real is None else len(real)
        out["fid"] = {
            **report.to_dict(),
            "standard": standard,
            "label": fid_label,
            "reference": _reference_entry(stats, stats_path, n_real, opts["image_size"]),
        }
    if "is" in chosen:
        assert gen.logits is not None
        res = inception_score(gen.logits, splits=opts["is_splits"])
        out["is"] = {
            "mean": res.mean,
            "std": res.std,
            "splits": opts["is_splits"],
            "n_images": len(gen),
            "n_classes": int(gen.logits.shape[1]),
            "logits": "unbiased (FC without bias; TF / torch-fidelity convention)",
            "standard": standard,
            "label": is_label,
        }
    return out


def _rprec_metric(
    run_dir: Path, run: Any, images: Tensor, captions: Sequence[str], opts: Mapping[str, Any]
) -> dict[str, Any]:
    """R-precision of the generated images against their own captions (run's DAMSM encoders)."""

    image_encoder = load_damsm(run_dir / "damsm", map_location=opts["device"]).image_encoder
    ids, lens = encode_captions(list(captions), run.vocab)
    res = r_precision(
        image_encoder, run.text_encoder, _float_batches(images, opts["batch_size"]), ids, lens,
        n_candidates=opts["rprec_candidates"], rounds=opts["rprec_rounds"], seed=opts["seed"],
        batch_size=opts["batch_size"],
    )  # fmt: skip
    return {**res.to_dict(), "encoders": str(run_dir / "damsm"), "score": "sentence cos(v, e)"}


def _evaluator_metrics(
    evaluator: Any,
    images: Tensor,
    real: Tensor | None,
    dataset: Any,
    plan: CaptionPlan,
    chosen: Sequence[str],
    opts: Mapping[str, Any],
) -> dict[str, Any]:
    """``align`` (with sanity bounds), ``dfid`` and ``dis`` with the ToyBirds evaluator."""

    bs = opts["batch_size"]
    out: dict[str, Any] = {}
    if "align" in chosen:
        mentions = [caption_mentions(dataset, int(i), int(k)) for i, k in zip(plan.items, plan.captions, strict=True)]
        bounds = sanity_bounds(evaluator, dataset, n=opts["sanity_images"], seed=opts["seed"], batch_size=bs)
        out["align"] = evaluate_alignment(
            evaluator, images, mentions, batch_size=bs, label="generated", bounds=bounds
        ).to_dict()
    if "dfid" in chosen:
        assert real is not None
        out["dfid"] = {**domain_fid(evaluator, images, real, batch_size=bs).to_dict(), "reference": "test split"}
    if "dis" in chosen:
        out["dis"] = domain_is(evaluator, images, splits=opts["is_splits"], batch_size=bs).to_dict()
    return out


# --------------------------------------------------------------------------------------------
# The whole evaluation
# --------------------------------------------------------------------------------------------


@dataclass
class EvaluationResult:
    """What :func:`evaluate_run` returns: the report and the images it scored (CPU, ``uint8``)."""

    report: dict[str, Any]
    images: Tensor
    """[M, 3, S, S] generated images, row ``j`` from ``captions[j]``."""
    captions: list[str]
    real_images: Tensor | None
    """The real test images used as reference (FID without a stats file, domain FID), or None."""
    plan: CaptionPlan

    def summary(self) -> str:
        """Human-readable summary (:func:`format_summary`)."""
        return format_summary(self.report)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the report as JSON (atomically; parents created); return the path."""

        return atomic_write_text(path, json.dumps(self.report, indent=2, sort_keys=False) + "\n")


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


def _load_inception(weights: str | os.PathLike[str] | None, protocol: str, device: torch.device) -> FIDInceptionV3:

    model = FIDInceptionV3("auto" if weights is None else weights, protocol=protocol)  # type: ignore[arg-type]
    return model.to(device)


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
    """Generate from the test captions of ``data_dir`` with the run in ``run_dir`` and score (module docstring).

    Everything that can be missing (run, data, Inception weights, statistics file, evaluator)
    is loaded and every count is checked before the first image is generated.

    Args:
        run_dir: a run folder written by ``csagan train``.
        data_dir: the dataset root the run was trained on (its test split is used).
        metrics: names from :data:`METRICS`, as a list or ``"fid,is,..."``.
        passes: passes over the test captions (the paper: ~10).
        max_images: score a seeded subset of this many planned images (and at most this many
            real test images as reference); ``None`` = all.
        seed: seed of the caption choice, the noise, the R-precision draws and the sanity bounds.
        truncation: noise truncation (DF-GAN's 0.88); ``None`` = plain N(0, 1).
        batch_size: images per forward pass everywhere.
        fid_weights: Inception weights file (default: ``$CSAGAN_FID_WEIGHTS``, then the torch hub
            cache; see :func:`csagan.metrics.inception_fid.resolve_weights_path`).
        fid_stats: ``.npz`` reference statistics (``csagan fid-stats``); default: the test images.
        protocol: ``"standard"`` (pytorch-fid) or ``"dfgan"`` (DF-GAN's non-standard network).
        is_splits: splits of IS and domain IS (Eq. 26).
        rprec_candidates, rprec_rounds: R-precision's captions per image and repetitions.
        evaluator: ToyBirds evaluator file (default :func:`default_evaluator_path`).
        sanity_images: real test images used for the alignment's sanity bounds.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        progress: tqdm progress bars.

    Raises:
        FileNotFoundError: run, data, weights, statistics or evaluator missing.
        ValueError: unknown metric, too few images for a metric, mismatched vocabulary or labels.
    """

    chosen = parse_metrics(metrics)
    dev = resolve_device(device)
    timer = _Timer()
    run_path = Path(run_dir)
    with timer("load"):
        run = load_run(run_path, map_location=dev)
        dataset = _test_split(data_dir, run, seed)
        plan = caption_plan(len(dataset), dataset.captions_per_image, passes, seed, max_images)
        _check_counts(chosen, len(plan), is_splits, rprec_candidates)
        if "align" in chosen and dataset.attributes is None:
            raise ValueError(
                f"metric 'align' needs ToyBirds ground truth ({Path(data_dir) / 'attributes.jsonl'} not found)"
            )
        inception = _load_inception(fid_weights, protocol, dev) if _INCEPTION_METRICS & set(chosen) else None
        stats_path = Path(fid_stats) if fid_stats is not None and "fid" in chosen else None
        stats = _load_stats(stats_path)
        ev = _load_evaluator(evaluator, dev) if _EVALUATOR_METRICS & set(chosen) else None
    captions = [dataset.caption_texts(int(i))[int(k)] for i, k in zip(plan.items, plan.captions, strict=True)]
    with timer("generate"):
        images = generate_images(
            run, captions, seed=seed, truncation=truncation, batch_size=batch_size, device=dev, progress=progress
        )
    real = None
    if ("fid" in chosen and stats is None) or "dfid" in chosen:
        with timer("real_images"):
            real = _real_images(dataset, max_images, seed, batch_size)
    opts = {
        "batch_size": batch_size, "device": dev, "progress": progress, "is_splits": is_splits, "seed": seed,
        "rprec_candidates": rprec_candidates, "rprec_rounds": rprec_rounds, "sanity_images": sanity_images,
        "image_size": run.model_config.image_size,
    }  # fmt: skip
    values: dict[str, Any] = {}
    if inception is not None:
        with timer("inception_metrics"):
            values.update(_inception_metrics(inception, images, real, stats, stats_path, chosen, opts))
    if "rprec" in chosen:
        with timer("rprec"):
            values["rprec"] = _rprec_metric(run_path, run, images, captions, opts)
    if ev is not None:
        with timer("evaluator_metrics"):
            values.update(_evaluator_metrics(ev, images, real, dataset, plan, chosen, opts))
    report = _report(
        run_path, run, data_dir, dataset, plan, chosen, values, timer.seconds,
        inception=None if inception is None else inception.weights_info(),
        evaluator=None if ev is None else str(resolve_evaluator_path(evaluator)),
        settings={"seed": seed, "truncation": truncation, "batch_size": batch_size, "max_images": max_images,
                  "device": str(dev), "protocol": protocol},
    )  # fmt: skip
    return EvaluationResult(report=report, images=images, captions=captions, real_images=real, plan=plan)


def _load_stats(path: Path | None) -> Any:

    return None if path is None else load_stats(path)


def _load_evaluator(path: str | os.PathLike[str] | None, device: torch.device) -> Any:

    return load_evaluator(resolve_evaluator_path(path), map_location=device)


def _report(
    run_path: Path,
    run: Any,
    data_dir: str | os.PathLike[str],
    dataset: Any,
    plan: CaptionPlan,
    chosen: Sequence[str],
    values: dict[str, Any],
    seconds: dict[str, float],
    *,
    inception: dict[str, Any] | None,
    evaluator: str | None,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """The JSON report (see the keys below; ``metrics`` holds one entry per requested metric)."""

    trunc = settings["truncation"]
    return {
        "format": REPORT_FORMAT,
        "format_version": _REPORT_VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "csagan_version": __version__,
        "torch_version": torch.__version__,
        "run": {
            "path": str(run_path),
            "step": run.step,
            "config": {"model": run.model_config.to_dict(), "train": run.train_config.to_dict()},
        },
        "data": {
            "path": str(data_dir),
            "split": "test",
            "n_test_images": len(dataset),
            "captions_per_image": dataset.captions_per_image,
            "image_size": dataset.image_size,
        },
        "generation": {
            "n_images": len(plan),
            "passes": plan.n_passes,
            "max_images": settings["max_images"],
            "seed": settings["seed"],
            "noise": "N(0, 1)" if trunc is None else f"truncated normal on [-2, 2] x {trunc}",
            "truncation": trunc,
            "caption_choice": "pass p: one caption per test image, uniform, numpy default_rng([seed, p])",
            "batch_size": settings["batch_size"],
            "device": settings["device"],
            "stored_as": "uint8 (as PNG files)",
        },
        "metrics_requested": list(chosen),
        "inception": inception,
        "fid_protocol": settings["protocol"] if inception is not None else None,
        "evaluator": evaluator,
        "metrics": values,
        "timings_s": seconds,
    }


# --------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------


def format_summary(report: Mapping[str, Any]) -> str:
    """A readable multi-line summary of a report from :func:`evaluate_run`."""
    gen, m = report["generation"], report["metrics"]
    lines = [
        f"run {report['run']['path']} (step {report['run']['step']}): {gen['n_images']} images from "
        f"{report['data']['n_test_images']} test images x {gen['passes']} pass(es)"
        + (f", capped at {gen['max_images']}" if gen["max_images"] else "")
        + f", seed {gen['seed']}, noise {gen['noise']}"
    ]
    if report.get("inception"):
        lines.append(f"Inception: {report['inception']['label']}")
    if "fid" in m:
        f = m["fid"]
        name = "FID" if f["standard"] else "Fréchet distance (NOT a standard FID)"
        ref = f["reference"]
        lines.append(f"{name}: {f['fid']:.4f}  (vs {ref['source']}, {ref['num_images']} images)")
    if "is" in m:
        name = "IS" if m["is"]["standard"] else "Inception Score on NON-STANDARD weights"
        lines.append(f"{name}: {m['is']['mean']:.4f} ± {m['is']['std']:.4f} ({m['is']['splits']} splits)")
    if "rprec" in m:
        r = m["rprec"]
        lines.append(
            f"R-precision: {r['mean']:.4f} ± {r['std']:.4f} ({r['n_candidates']} candidates, "
            f"{len(r['per_round'])} rounds; chance {r['chance']:.4f})"
        )
    if "align" in m:
        _append_alignment(lines, m["align"])
    if "dfid" in m:
        lines.append(f"domain FID (evaluator features): {m['dfid']['fid']:.4f}")
    if "dis" in m:
        d = m["dis"]
        lines.append(f"domain IS (species head): {d['mean']:.4f} ± {d['std']:.4f} (max {d['n_classes']})")
    lines.append("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in report["timings_s"].items()))
    return "\n".join(lines)


def _append_alignment(lines: list[str], align: Mapping[str, Any]) -> None:
    lines.append(
        f"attribute accuracy: {align['attribute_accuracy']:.4f} over {align['n_scored']}/{align['n_images']} images"
    )
    bounds = align.get("bounds")
    if bounds:
        lines.append(
            f"  sanity bounds on {bounds['n_images']} real test images: own captions (ceiling) "
            f"{bounds['ceiling']['attribute_accuracy']:.4f}, shuffled captions (chance) "
            f"{bounds['chance']['attribute_accuracy']:.4f}"
        )
