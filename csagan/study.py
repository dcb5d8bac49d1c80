"""The reproduction study: CSA-GAN against its ablations and baselines (paper Tables 1, 3 and 4).

One job: train every variant for the same image budget and several seeds, score each run with
:func:`csagan.evaluate.evaluate_run`, write one JSON file per run, and turn those files into the
table and the claim-by-claim verdicts that the book's reproduction chapter shows.

* :func:`run_study` — train (resumable: a killed study continues with the same call) and
  evaluate every (variant, seed); writes ``<results>/<variant>_seed<k>.json``.
* :func:`load_results`, :func:`summarize` — mean ± standard deviation per variant and metric.
* :func:`judge_claims` — each ordering the paper claims (:data:`CLAIMS`), judged on the
  measured numbers: *reproduced*, *not reproduced* or *inconclusive* (see :func:`judge`).
* :func:`markdown_table` — the table beside the paper's values (:data:`PAPER`).

The metrics (all from :mod:`csagan.evaluate`): the domain FID and domain IS on the ToyBirds
evaluator (the stand-ins for Eqs. 27 and 26, whose Inception weights cannot be downloaded here),
attribute accuracy and R-precision. Where the paper reports IS/FID, the verdict uses the domain
versions; attribute accuracy and R-precision are extra measurements with no paper value.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csagan.devices import cpu_name
from csagan.evaluate import evaluate_run
from csagan.train.config import resolve, run_config_json
from csagan.train.engine import train

__all__ = [
    "CLAIMS",
    "METRIC_KEYS",
    "PAPER",
    "STUDY_VARIANTS",
    "Claim",
    "StudySettings",
    "Verdict",
    "judge",
    "judge_claims",
    "load_results",
    "markdown_table",
    "result_path",
    "run_study",
    "study_metrics",
    "summarize",
]

#: The variants of the study, in training order (``ssagan-fixed-mask`` reads ``csagan``'s masks).
STUDY_VARIANTS: tuple[str, ...] = (
    "csagan", "csagan-no-ssf", "csagan-no-damsm", "csagan-no-csa", "csagan-no-g0",
    "ssagan", "ssagan-fixed-mask", "dfgan",
)  # fmt: skip

#: Metric name -> (where it sits in an evaluation report's ``metrics``, higher is better).
METRIC_KEYS: dict[str, tuple[tuple[str, ...], bool]] = {
    "domain_fid": (("dfid", "fid"), False),
    "domain_is": (("dis", "mean"), True),
    "attribute_accuracy": (("align", "attribute_accuracy"), True),
    "r_precision": (("rprec", "mean"), True),
}

#: The paper's numbers (Tables 1, 3, 4): CUB IS, CUB FID, COCO FID; ``None`` where not reported.
PAPER: dict[str, dict[str, float | None]] = {
    "csagan": {"cub_is": 5.44, "cub_fid": 17.04, "coco_fid": 13.59},
    "csagan-no-ssf": {"cub_is": 4.21, "cub_fid": 17.72, "coco_fid": 16.26},
    "csagan-no-damsm": {"cub_is": 4.97, "cub_fid": 18.61, "coco_fid": 14.79},
    "csagan-no-csa": {"cub_is": 5.07, "cub_fid": 18.02, "coco_fid": 19.65},
    "csagan-no-g0": {"cub_is": 5.19, "cub_fid": 17.32, "coco_fid": 13.62},
    "ssagan": {"cub_is": 5.17, "cub_fid": 17.59, "coco_fid": 19.37},
    "ssagan-fixed-mask": {"cub_is": 5.37, "cub_fid": 17.48, "coco_fid": 13.64},
    "dfgan": {"cub_is": 4.86, "cub_fid": 19.24, "coco_fid": 28.92},
}


@dataclass(frozen=True)
class Claim:
    """An ordering the paper claims: ``better`` beats ``worse`` (in its table ``table``)."""

    name: str
    better: str
    worse: str
    table: str


CLAIMS: tuple[Claim, ...] = (
    Claim("SSF helps", "csagan", "csagan-no-ssf", "Table 3"),
    Claim("the DAMSM loss helps", "csagan", "csagan-no-damsm", "Table 3"),
    Claim("CSA helps", "csagan", "csagan-no-csa", "Table 3"),
    Claim("G0 helps", "csagan", "csagan-no-g0", "Table 4"),
    Claim("CSA-GAN's fixed masks help SSA-GAN", "ssagan-fixed-mask", "ssagan", "Table 4"),
    Claim("CSA-GAN beats SSA-GAN", "csagan", "ssagan", "Table 1"),
    Claim("SSA-GAN beats DF-GAN", "ssagan", "dfgan", "Table 1"),
    Claim("CSA-GAN beats DF-GAN", "csagan", "dfgan", "Table 1"),
)


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudySettings:
    """Everything a study run depends on (stored in every result file).

    ``max_steps × batch_size`` is the image budget of every run. ``eval_images`` generated
    images per run are scored (a seeded subset of ``passes`` passes over the test captions).
    """

    data_dir: str
    damsm_dir: str
    runs_dir: str
    results_dir: str
    variants: tuple[str, ...] = STUDY_VARIANTS
    seeds: tuple[int, ...] = (0, 1)
    preset: str = "toybirds-cpu"
    max_steps: int = 600
    batch_size: int = 16
    eval_images: int = 1000
    passes: int = 1
    rprec_candidates: int = 100
    metrics: tuple[str, ...] = ("dfid", "dis", "align", "rprec")
    evaluator: str | None = None
    overrides: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.variants) - set(STUDY_VARIANTS))
        if unknown:
            raise ValueError(f"unknown study variant(s) {unknown}; choose from {list(STUDY_VARIANTS)}.")
        if "ssagan-fixed-mask" in self.variants and "csagan" not in self.variants:
            raise ValueError("variant 'ssagan-fixed-mask' takes its masks from the 'csagan' runs; include 'csagan'.")
        if not self.seeds:
            raise ValueError("give at least one seed.")
        if self.max_steps < 1 or self.batch_size < 1 or self.eval_images < 2:
            raise ValueError("max_steps and batch_size must be >= 1 and eval_images >= 2.")

    @property
    def images_per_run(self) -> int:
        """The image budget of every run (per process)."""
        return self.max_steps * self.batch_size


#: Settings that choose *which* runs a study makes, not *how* each run is made: a result file
#: stays valid when a study is rerun with more (or fewer) variants or seeds.
_SELECTION_KEYS = ("variants", "seeds")


def _run_settings(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the settings that a single (variant, seed) result depends on."""
    return {k: v for k, v in json.loads(json.dumps(meta)).items() if k not in _SELECTION_KEYS}


def result_path(results_dir: str | Path, variant: str, seed: int) -> Path:
    """Where the result of (variant, seed) is written."""
    return Path(results_dir) / f"{variant}_seed{seed}.json"


def _hardware() -> dict[str, Any]:

    info: dict[str, Any] = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _pick(report: Mapping[str, Any], path: tuple[str, ...]) -> float | None:
    node: Any = report.get("metrics", {})
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, (int, float)) else None


def study_metrics(report: Mapping[str, Any]) -> dict[str, float | None]:
    """The numbers a study result records (:data:`METRIC_KEYS`), read from an evaluation report."""
    return {name: _pick(report, path) for name, (path, _) in METRIC_KEYS.items()}


def _train_seconds(run_dir: Path) -> float:
    path = run_dir / "study_wall.json"
    return float(json.loads(path.read_text())["train_seconds"]) if path.is_file() else 0.0


def run_study(settings: StudySettings, *, progress: bool = True) -> list[Path]:
    """Train and evaluate every (variant, seed) of ``settings``; returns the result files.

    A (variant, seed) whose result file exists with the same settings (apart from the
    selection of variants and seeds) is skipped; a run folder
    with a checkpoint is resumed (:func:`csagan.train.engine.train` with ``resume=True``), so the
    study survives being killed at any point. Training wall time is accumulated over resumes.
    """

    written: list[Path] = []
    runs = Path(settings.runs_dir)
    meta = asdict(settings)
    for variant in settings.variants:
        for seed in settings.seeds:
            out = result_path(settings.results_dir, variant, seed)
            if out.is_file() and _run_settings(json.loads(out.read_text()).get("settings", {})) == _run_settings(meta):
                written.append(out)
                continue
            run_dir = runs / variant / f"seed{seed}"
            overrides = [
                f"damsm_dir={settings.damsm_dir}", f"seed={seed}", f"max_steps={settings.max_steps}",
                f"batch_size={settings.batch_size}", "epochs=0", *settings.overrides,
            ]  # fmt: skip
            if variant == "ssagan-fixed-mask":
                overrides.append(f"mask_source={runs / 'csagan' / f'seed{seed}'}")
            model_cfg, train_cfg = resolve(variant, settings.preset, overrides)
            resume = (run_dir / "checkpoint.pt").is_file()
            start = time.perf_counter()
            train(model_cfg, train_cfg, settings.data_dir, run_dir, resume=resume, progress=progress)
            seconds = _train_seconds(run_dir) + time.perf_counter() - start
            (run_dir / "study_wall.json").write_text(json.dumps({"train_seconds": seconds}) + "\n")
            start = time.perf_counter()
            result = evaluate_run(
                run_dir, settings.data_dir, settings.metrics, passes=settings.passes, max_images=settings.eval_images,
                seed=seed, rprec_candidates=settings.rprec_candidates, evaluator=settings.evaluator,
                device=train_cfg.device, progress=progress,
            )  # fmt: skip
            record = {
                "variant": variant,
                "seed": seed,
                "settings": meta,
                "config": json.loads(run_config_json(model_cfg, train_cfg)),
                "images_seen": settings.images_per_run,
                "train_seconds": round(seconds, 1),
                "eval_seconds": round(time.perf_counter() - start, 1),
                "hardware": _hardware(),
                "metrics": study_metrics(result.report),
                "report": result.report,
            }
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(record, indent=2, default=str) + "\n")
            written.append(out)
    return written


# --------------------------------------------------------------------------------------------
# Tables and verdicts
# --------------------------------------------------------------------------------------------


def load_results(results_dir: str | Path) -> list[dict[str, Any]]:
    """Every ``*_seed*.json`` result in ``results_dir`` (sorted by file name).

    Raises:
        FileNotFoundError: the folder does not exist or holds no result.
    """
    folder = Path(results_dir)
    files = sorted(folder.glob("*_seed*.json")) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"no study results (*_seed*.json) in {folder}; run `make reproduce` first.")
    return [json.loads(f.read_text()) for f in files]


def summarize(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Variant -> metric -> ``{"mean", "std", "n"}`` (sample std, ``ddof=1``; 0 for one seed)."""
    values: dict[str, dict[str, list[float]]] = {}
    for r in results:
        per = values.setdefault(str(r["variant"]), {})
        for name, value in r["metrics"].items():
            if value is not None and math.isfinite(float(value)):
                per.setdefault(name, []).append(float(value))
    out: dict[str, dict[str, dict[str, float]]] = {}
    for variant, metrics in values.items():
        out[variant] = {}
        for name, vals in metrics.items():
            arr = np.asarray(vals)
            out[variant][name] = {
                "mean": float(arr.mean()),
                "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
                "n": float(len(arr)),
            }
    return out


@dataclass(frozen=True)
class Verdict:
    """The judgement of one claim on one metric."""

    claim: str
    table: str
    metric: str
    better: str
    worse: str
    difference: float  # (better − worse) in the direction where > 0 means the claim holds
    noise: float  # sqrt(std_better² + std_worse²)
    verdict: str  # "reproduced", "not reproduced", "inconclusive" or "missing"


def judge(difference: float, noise: float, n_min: int) -> str:
    """The rule: with at least two seeds each, a claim is *reproduced* when the measured
    difference favours it by more than the seed noise ``sqrt(s_a² + s_b²)``, *not reproduced*
    when it goes the other way by more than that, and *inconclusive* otherwise (also with one
    seed, where the noise cannot be estimated)."""
    if n_min < 2:
        return "inconclusive"
    if difference > noise:
        return "reproduced"
    if difference < -noise:
        return "not reproduced"
    return "inconclusive"


def judge_claims(
    summary: Mapping[str, Mapping[str, Mapping[str, float]]], claims: Sequence[Claim] = CLAIMS
) -> list[Verdict]:
    """One :class:`Verdict` per (claim, metric of :data:`METRIC_KEYS`)."""
    verdicts: list[Verdict] = []
    for claim in claims:
        for metric, (_, higher_better) in METRIC_KEYS.items():
            a = summary.get(claim.better, {}).get(metric)
            b = summary.get(claim.worse, {}).get(metric)
            if a is None or b is None:
                verdicts.append(Verdict(claim.name, claim.table, metric, claim.better, claim.worse,
                                        math.nan, math.nan, "missing"))  # fmt: skip
                continue
            diff = (a["mean"] - b["mean"]) * (1.0 if higher_better else -1.0)
            noise = math.hypot(a["std"], b["std"])
            verdicts.append(Verdict(claim.name, claim.table, metric, claim.better, claim.worse, diff, noise,
                                    judge(diff, noise, int(min(a["n"], b["n"])))))  # fmt: skip
    return verdicts


def _cell(stat: Mapping[str, float] | None, digits: int) -> str:
    if stat is None:
        return "–"
    if stat["n"] > 1:
        return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"
    return f"{stat['mean']:.{digits}f}"


def markdown_table(summary: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """A Markdown table: measured mean ± std per variant beside the paper's CUB IS / FID and COCO FID."""
    head = ("| variant | seeds | domain FID ↓ | domain IS ↑ | attribute acc. ↑ | R-precision ↑ "
            "| paper CUB IS ↑ | paper CUB FID ↓ | paper COCO FID ↓ |")  # fmt: skip
    lines = [head, "|" + "---|" * 9]
    for variant in STUDY_VARIANTS:
        stats = summary.get(variant)
        if stats is None:
            continue
        n = int(max((s["n"] for s in stats.values()), default=0))
        paper = PAPER[variant]
        lines.append(
            f"| {variant} | {n} | {_cell(stats.get('domain_fid'), 2)} | {_cell(stats.get('domain_is'), 3)} "
            f"| {_cell(stats.get('attribute_accuracy'), 3)} | {_cell(stats.get('r_precision'), 3)} "
            f"| {paper['cub_is']} | {paper['cub_fid']} | {paper['coco_fid']} |"
        )
    return "\n".join(lines)
