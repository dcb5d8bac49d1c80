"""The JSON report of an evaluation, its readable summary, and what :func:`csagan.evaluate.run` returns."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from csagan import __version__
from csagan.atomic import atomic_write_text
from csagan.evaluate.config import EvalConfig
from csagan.evaluate.plan import CaptionPlan

__all__ = ["REPORT_FORMAT", "EvaluationResult", "build_report", "format_summary"]

REPORT_FORMAT = "csagan-evaluation"
_REPORT_VERSION = 1


@dataclass
class EvaluationResult:
    """What :func:`csagan.evaluate.run` returns: the report and the images it scored (CPU, ``uint8``)."""

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


def build_report(
    run_path: Path,
    run: Any,
    data_dir: str | os.PathLike[str],
    dataset: Any,
    plan: CaptionPlan,
    config: EvalConfig,
    values: dict[str, Any],
    seconds: dict[str, float],
    *,
    inception: dict[str, Any] | None,
    evaluator: str | None,
    device: torch.device,
) -> dict[str, Any]:
    """The JSON report (see the keys below; ``metrics`` holds one entry per requested metric)."""

    trunc = config.truncation
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
            "max_images": config.max_images,
            "seed": config.seed,
            "noise": "N(0, 1)" if trunc is None else f"truncated normal on [-2, 2] x {trunc}",
            "truncation": trunc,
            "caption_choice": "pass p: one caption per test image, uniform, numpy default_rng([seed, p])",
            "batch_size": config.batch_size,
            "device": str(device),
            "stored_as": "uint8 (as PNG files)",
        },
        "metrics_requested": list(config.metrics),
        "inception": inception,
        "fid_protocol": config.protocol if inception is not None else None,
        "evaluator": evaluator,
        "metrics": values,
        "timings_s": seconds,
    }


def format_summary(report: Mapping[str, Any]) -> str:
    """A readable multi-line summary of a report from :func:`csagan.evaluate.run`."""
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
