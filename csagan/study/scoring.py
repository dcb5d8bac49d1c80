"""How the study scores one generator: the evaluation report, the numbers it records, and two checks
that tell learning from noise.

:func:`score_run` evaluates a run folder with :func:`csagan.evaluate.evaluate_run` (domain FID and
IS on the ToyBirds evaluator, attribute accuracy, R-precision) and adds

* ``attribute_accuracy_other``: the attribute accuracy of the *same* generated images against the
  caption of a test image half the split away (another species). A generator that follows its
  captions scores clearly higher with its own captions than with these; one that ignores them
  scores the same;
* for generators with CSA, ``csa``: how much of the sentence survives in the sampled code
  (:func:`csagan.csa.code_signal` on :data:`CSA_CAPTIONS` test captions).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from csagan.csa import code_signal
from csagan.data.datasets import TextImageDataset
from csagan.evaluate import EvalConfig, EvalPaths, EvaluationResult, resolve_evaluator_path
from csagan.evaluate import run as evaluate
from csagan.evaluator import caption_mentions, evaluate_alignment, load_evaluator
from csagan.sample import encode_captions
from csagan.study.config import METRIC_KEYS, StudyConfig
from csagan.train.run import load_run

__all__ = ["CSA_CAPTIONS", "eval_config_of", "first_caption_codes", "other_caption_accuracy", "score_run", "study_metrics"]

#: Test captions (evenly spaced, first caption each) for the CSA code measurement.
CSA_CAPTIONS = 100


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


def first_caption_codes(run: Any, data: Any, n: int = CSA_CAPTIONS) -> Tensor:
    """Sentence codes [n, text_dim] of the first captions of ``n`` evenly spaced images of ``data``,
    from the text encoder of ``run`` (a :class:`csagan.train.run.LoadedRun`)."""
    rows = np.linspace(0, len(data) - 1, min(n, len(data))).round().astype(int)
    ids, lens = encode_captions([data.caption_texts(int(i))[0] for i in rows], run.vocab)
    with torch.no_grad():
        _, sent = run.text_encoder(ids, lens)
    return sent


def other_caption_accuracy(result: EvaluationResult, data_dir: str | Path, evaluator: str | Path | None,
                           *, image_size: int, seed: int, batch_size: int = 50) -> float:
    """Attribute accuracy of ``result``'s images against the caption of the test image half the split
    away (same caption index), i.e. of another species; compare with the report's own-caption accuracy."""
    dataset = TextImageDataset(data_dir, "test", image_size=image_size, transform="eval", seed=seed)
    n = len(dataset)
    plan = result.plan
    other = [caption_mentions(dataset, (int(i) + n // 2) % n, int(k)) for i, k in zip(plan.items, plan.captions)]
    model = load_evaluator(resolve_evaluator_path(evaluator), map_location="cpu")
    return float(evaluate_alignment(model, result.images, other, batch_size=batch_size).attribute_accuracy)


def eval_config_of(config: StudyConfig, *, seed: int, device: str | torch.device = "auto") -> EvalConfig:
    """The evaluation settings of a study run (:class:`csagan.evaluate.EvalConfig`): the study's metrics,
    passes, images and R-precision candidates, the run's seed, the other fields at their defaults."""
    return EvalConfig(metrics=config.metrics, passes=config.passes, max_images=config.eval_images, seed=seed,
                      rprec_candidates=config.rprec_candidates, device=str(device))  # fmt: skip


def score_run(run_dir: str | Path, data_dir: str | Path, config: StudyConfig, *, seed: int,
              evaluator: str | Path | None = None, device: str | torch.device = "auto",
              progress: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score the generator in ``run_dir`` as the study does (:func:`eval_config_of`).

    Returns:
        ``(metrics, report)``: the numbers a result records (:data:`METRIC_KEYS`, then
        ``attribute_accuracy_other`` and, for CSA generators, ``csa_between_caption`` /
        ``csa_retrieval`` / ``csa_chance``) and the whole evaluation report.
    """
    result = evaluate(eval_config_of(config, seed=seed, device=device),
                      EvalPaths(run_dir, data_dir, evaluator=evaluator), progress=progress)  # fmt: skip
    metrics: dict[str, Any] = dict(study_metrics(result.report))
    run = load_run(run_dir)
    size = run.model_config.image_size
    if "align" in result.report.get("metrics", {}):
        metrics["attribute_accuracy_other"] = other_caption_accuracy(result, data_dir, evaluator, image_size=size,
                                                                     seed=seed)  # fmt: skip
    if run.generator.csa is not None:
        data = TextImageDataset(data_dir, split="test", image_size=size, transform="eval")
        signal = code_signal(run.generator.csa, first_caption_codes(run, data), seed=0)
        metrics.update({f"csa_{k}": round(float(v), 6) for k, v in signal._asdict().items()})
    return metrics, result.report
