"""The study's numbers: results read back, mean ± standard deviation per variant, and each claim of the
paper judged on them, at the end of the runs or at any of their scored budgets.

* :func:`load_results`, :func:`summarize` — mean ± standard deviation per variant and metric.
* :func:`results_at`, :func:`budgets` — the same results at an earlier scored point of every run.
* :func:`judge_claims` — each ordering the paper claims (:data:`~csagan.study.config.CLAIMS`), judged on
  the measured numbers: *reproduced*, *not reproduced* or *inconclusive* (see :func:`judge`).
* :func:`markdown_table` — the table beside the paper's values (:data:`~csagan.study.config.PAPER`).
* :func:`budget_verdict_table` — every claim's verdicts at every scored budget, one letter per metric.

The metrics (all from :mod:`csagan.evaluate`): the domain FID and domain IS on the ToyBirds evaluator
(the stand-ins for Eqs. 27 and 26, whose Inception weights cannot be downloaded here), attribute
accuracy and R-precision. Where the paper reports IS/FID, the verdict uses the domain versions;
attribute accuracy and R-precision are extra measurements with no paper value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from csagan.study.config import CLAIMS, METRIC_KEYS, PAPER, STUDY_VARIANTS, Claim

__all__ = [
    "Verdict",
    "budget_verdict_table",
    "budgets",
    "judge",
    "judge_claims",
    "load_results",
    "markdown_table",
    "results_at",
    "summarize",
]


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


def budgets(results: Sequence[Mapping[str, Any]]) -> list[int]:
    """The image counts at which *every* result has a scored point (ascending; the end of runs made
    before points were recorded counts as their only point)."""
    common: set[int] | None = None
    for r in results:
        seen = {int(p["images_seen"]) for p in r.get("points", [])} or {int(r["images_seen"])}
        common = seen if common is None else common & seen
    return sorted(common or ())


def results_at(results: Sequence[Mapping[str, Any]], images_seen: int) -> list[dict[str, Any]]:
    """The results as they stood after ``images_seen`` images: each one's ``metrics`` replaced by those
    of its point at that budget.

    Raises:
        ValueError: a result has no point at that budget (see :func:`budgets`).
    """
    out = []
    for r in results:
        if not r.get("points") and int(r["images_seen"]) == images_seen:
            out.append(dict(r))
            continue
        match = [p for p in r.get("points", []) if int(p["images_seen"]) == images_seen]
        if not match:
            have = [int(p["images_seen"]) for p in r.get("points", [])] or [int(r["images_seen"])]
            raise ValueError(f"{r['variant']} seed {r['seed']} has no point at {images_seen} images (it has {have}).")
        out.append({**r, "images_seen": images_seen, "metrics": match[0]["metrics"]})
    return out



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


#: One letter per verdict in :func:`budget_verdict_table`.
VERDICT_LETTERS = {"reproduced": "R", "not reproduced": "N", "inconclusive": "i", "missing": "–"}


def _sign(v: Verdict) -> str:
    if v.verdict == "missing":
        return ""
    return "+" if v.difference > 0 else "−" if v.difference < 0 else "0"


def budget_verdict_table(results: Sequence[Mapping[str, Any]], claims: Sequence[Claim] = CLAIMS) -> str:
    """A Markdown table of the verdicts of every claim (rows) at every budget of :func:`budgets` (columns).

    A cell holds one letter per metric of :data:`METRIC_KEYS`, in its order: **R** reproduced, **N** not
    reproduced, **i** inconclusive, **–** missing, each followed by the sign of the measured difference
    (``+`` where it favours the claim, ``−`` where it goes against it, ``0`` where there is none).

    Raises:
        ValueError: the results share no scored budget.
    """
    seen = budgets(results)
    if not seen:
        raise ValueError("budget_verdict_table: the results share no scored budget.")
    at = {n: judge_claims(summarize(results_at(results, n)), claims) for n in seen}
    rows = ["| claim | " + " | ".join(f"{n:,d} images" for n in seen) + " |", "|---|" + "---|" * len(seen)]
    for c in claims:
        cells = []
        for n in seen:
            cells.append(" ".join(
                VERDICT_LETTERS[v.verdict] + _sign(v)
                for v in at[n] if v.claim == c.name
            ))  # fmt: skip
        rows.append(f"| {c.name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
