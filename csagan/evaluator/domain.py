"""Domain FID and IS: Eqs. (27) and (26) computed with the evaluator instead of Inception-v3.

* **domain FID** - Eq. (27) on the evaluator's penultimate features (:func:`domain_fid`,
  reusing :func:`csagan.metrics.fid.frechet_distance`);
* **domain IS** - Eq. (26) on the evaluator's species head (:func:`domain_is`, reusing
  :func:`csagan.metrics.inception_score.inception_score`).

The numbers live on the evaluator's scale and are not comparable to Inception FID / IS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from torch import Tensor

from csagan.evaluator.model import AttributeEvaluator
from csagan.metrics.fid import compute_statistics, frechet_distance
from csagan.metrics.inception_score import inception_score

__all__ = ["DomainFIDReport", "DomainISReport", "domain_fid", "domain_is"]


@dataclass(frozen=True)
class DomainFIDReport:
    """Eq. (27) on the evaluator's features (not comparable to Inception FID)."""

    fid: float
    used_eps_offset: bool
    n_images_a: int
    n_images_b: int
    feature_dim: int

    def to_dict(self) -> dict[str, Any]:
        """Plain dict."""
        return asdict(self)

    def format(self) -> str:
        """One line."""
        note = " (covariance needed an eps offset)" if self.used_eps_offset else ""
        few = (
            f"; fewer images than feature dims ({self.feature_dim}): biased"
            if min(self.n_images_a, self.n_images_b) <= self.feature_dim
            else ""
        )
        return f"domain FID {self.fid:.4f} ({self.n_images_a} vs {self.n_images_b} images{few}){note}"


def domain_fid(
    evaluator: AttributeEvaluator,
    images_a: Tensor | Iterable[Any],
    images_b: Tensor | Iterable[Any],
    batch_size: int = 128,
) -> DomainFIDReport:
    """Fréchet distance, Eq. (27), between two image sets on the evaluator's features.

    Reuses :func:`csagan.metrics.fid.compute_statistics` and ``frechet_distance``.
    """
    fa = evaluator.predict(images_a, batch_size).features
    fb = evaluator.predict(images_b, batch_size).features
    mu_a, sig_a = compute_statistics(fa)
    mu_b, sig_b = compute_statistics(fb)
    res = frechet_distance(mu_a, sig_a, mu_b, sig_b)
    return DomainFIDReport(
        fid=max(0.0, res.value),
        used_eps_offset=res.used_eps_offset,
        n_images_a=int(fa.shape[0]),
        n_images_b=int(fb.shape[0]),
        feature_dim=int(fa.shape[1]),
    )


@dataclass(frozen=True)
class DomainISReport:
    """Eq. (26) on the evaluator's species head."""

    mean: float
    std: float
    n_images: int
    splits: int
    n_classes: int

    def to_dict(self) -> dict[str, Any]:
        """Plain dict."""
        return asdict(self)

    def format(self) -> str:
        """One line."""
        return (
            f"domain IS {self.mean:.4f} ± {self.std:.4f} ({self.n_images} images, {self.splits} splits, "
            f"{self.n_classes} species; max {self.n_classes})"
        )


def domain_is(
    evaluator: AttributeEvaluator, images: Tensor | Iterable[Any], splits: int = 10, batch_size: int = 128
) -> DomainISReport:
    """Inception Score, Eq. (26), with the evaluator's species head as p(y|x).

    Reuses :func:`csagan.metrics.inception_score.inception_score` (which validates ``splits``).
    """
    logits = evaluator.predict(images, batch_size).species_logits
    res = inception_score(logits, splits=splits)
    return DomainISReport(
        mean=res.mean, std=res.std, n_images=int(logits.shape[0]), splits=splits, n_classes=int(logits.shape[1])
    )
