"""The metrics of an evaluation, each computed by the function that defines it (module docstring of
:mod:`csagan.evaluate`): Inception FID / IS, R-precision, and the ToyBirds evaluator's alignment and
domain FID / IS. Each takes the generated ``uint8`` images and the :class:`~csagan.evaluate.config.EvalConfig`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from csagan.damsm_io import load_damsm
from csagan.evaluate.config import EvalConfig
from csagan.evaluate.plan import CaptionPlan, float_batches
from csagan.evaluator import caption_mentions, domain_fid, domain_is, evaluate_alignment, sanity_bounds
from csagan.metrics.fid import extract_features, fid_from_features
from csagan.metrics.inception_fid import FIDInceptionV3
from csagan.metrics.inception_score import inception_score
from csagan.metrics.rprecision import r_precision
from csagan.sample import encode_captions

__all__ = ["evaluator_metrics", "inception_labels", "inception_metrics", "rprec_metric"]


def inception_labels(info: Mapping[str, Any]) -> tuple[bool, str, str]:
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


def inception_metrics(
    model: FIDInceptionV3,
    images: Tensor,
    real: Tensor | None,
    stats: Any,
    stats_path: Path | None,
    config: EvalConfig,
    *,
    image_size: int,
    device: torch.device,
    progress: bool,
) -> dict[str, Any]:
    """``fid`` (Eq. 27) and/or ``is`` (Eq. 26) on one pass of the Inception network."""

    bs, chosen = config.batch_size, config.metrics
    gen = extract_features(images, model, bs, device, progress, with_logits="is" in chosen)
    standard, fid_label, is_label = inception_labels(model.weights_info())
    out: dict[str, Any] = {}
    if "fid" in chosen:
        if stats is None:
            assert real is not None
            ref: Any = extract_features(real, model, bs, device, progress)
        else:
            ref = stats
        report = fid_from_features(gen, ref)
        n_real = 0 if real is None else len(real)
        out["fid"] = {
            **report.to_dict(),
            "standard": standard,
            "label": fid_label,
            "reference": _reference_entry(stats, stats_path, n_real, image_size),
        }
    if "is" in chosen:
        assert gen.logits is not None
        res = inception_score(gen.logits, splits=config.is_splits)
        out["is"] = {
            "mean": res.mean,
            "std": res.std,
            "splits": config.is_splits,
            "n_images": len(gen),
            "n_classes": int(gen.logits.shape[1]),
            "logits": "unbiased (FC without bias; TF / torch-fidelity convention)",
            "standard": standard,
            "label": is_label,
        }
    return out


def rprec_metric(
    run_dir: Path, run: Any, images: Tensor, captions: Sequence[str], config: EvalConfig, device: torch.device
) -> dict[str, Any]:
    """R-precision of the generated images against their own captions (run's DAMSM encoders)."""

    image_encoder = load_damsm(run_dir / "damsm", map_location=device).image_encoder
    ids, lens = encode_captions(list(captions), run.vocab)
    res = r_precision(
        image_encoder, run.text_encoder, float_batches(images, config.batch_size), ids, lens,
        n_candidates=config.rprec_candidates, rounds=config.rprec_rounds, seed=config.seed,
        batch_size=config.batch_size,
    )  # fmt: skip
    return {**res.to_dict(), "encoders": str(run_dir / "damsm"), "score": "sentence cos(v, e)"}


def evaluator_metrics(
    evaluator: Any, images: Tensor, real: Tensor | None, dataset: Any, plan: CaptionPlan, config: EvalConfig
) -> dict[str, Any]:
    """``align`` (with sanity bounds), ``dfid`` and ``dis`` with the ToyBirds evaluator."""

    bs, chosen = config.batch_size, config.metrics
    out: dict[str, Any] = {}
    if "align" in chosen:
        mentions = [caption_mentions(dataset, int(i), int(k)) for i, k in zip(plan.items, plan.captions, strict=True)]
        bounds = sanity_bounds(evaluator, dataset, n=config.sanity_images, seed=config.seed, batch_size=bs)
        out["align"] = evaluate_alignment(
            evaluator, images, mentions, batch_size=bs, label="generated", bounds=bounds
        ).to_dict()
    if "dfid" in chosen:
        assert real is not None
        out["dfid"] = {**domain_fid(evaluator, images, real, batch_size=bs).to_dict(), "reference": "test split"}
    if "dis" in chosen:
        out["dis"] = domain_is(evaluator, images, splits=config.is_splits, batch_size=bs).to_dict()
    return out
