"""Alignment metric: attribute accuracy of images against what their captions mention.

FID (Eq. 27) and IS (Eq. 26) measure image distributions; they cannot tell whether an image
shows what its caption says. For every ToyBirds caption ``attributes.jsonl`` lists the
attributes it mentions (:func:`caption_mentions` reads them), so the evaluator's predictions
measure alignment exactly:

* **attribute accuracy** - mean over images of the share of the attributes its caption
  mentions that the classifier predicts with the mentioned value (:func:`evaluate_alignment`,
  :func:`alignment_from_predictions`); also per attribute and pooled over all mentions;
* **sanity bounds** - the same metric on real held-out images with their own captions (the
  ceiling the classifier allows) and with captions of other images (chance level), printed
  with every report (:func:`sanity_bounds`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from csagan.evaluator.model import AttributeEvaluator

__all__ = [
    "AlignmentReport",
    "SanityBounds",
    "alignment_from_predictions",
    "caption_mentions",
    "evaluate_alignment",
    "sanity_bounds",
]


@dataclass(frozen=True)
class AlignmentReport:
    """Attribute accuracy of images against the attributes their captions mention.

    Attributes:
        attribute_accuracy: mean over scored images of (correct mentions / mentions).
        mention_accuracy: correct mentions / mentions, pooled over all images.
        per_attribute: attribute -> accuracy over the mentions of that attribute.
        counts: attribute -> number of mentions (attributes never mentioned are absent).
        n_images: images given; ``n_scored`` of them had at least one mention.
        label: what was scored (e.g. ``"generated"``).
        bounds: the sanity bounds to print with the report (or None).
    """

    attribute_accuracy: float
    mention_accuracy: float
    per_attribute: dict[str, float]
    counts: dict[str, int]
    n_images: int
    n_scored: int
    label: str = ""
    bounds: SanityBounds | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (bounds nested)."""
        out = {k: v for k, v in asdict(self).items() if k != "bounds"}
        out["bounds"] = None if self.bounds is None else self.bounds.to_dict()
        return out

    def format(self) -> str:
        """Human-readable multi-line summary (with the sanity bounds when attached)."""
        head = f"attribute accuracy{f' ({self.label})' if self.label else ''}: {self.attribute_accuracy:.4f}"
        lines = [
            f"{head} over {self.n_scored}/{self.n_images} images; pooled over mentions {self.mention_accuracy:.4f}"
        ]
        for name, acc in self.per_attribute.items():
            lines.append(f"  {name:<13} {acc:.4f}  (n={self.counts[name]})")
        if self.bounds is not None:
            lines.append(self.bounds.format())
        else:
            lines.append("  (no sanity bounds attached: compute them with sanity_bounds())")
        return "\n".join(lines)


def _check_mentions(mentions: Sequence[Mapping[str, str]], values: Mapping[str, Sequence[str]], n: int) -> None:
    if len(mentions) != n:
        raise ValueError(f"mentions has {len(mentions)} entries but there are {n} images; give one dict per image")
    for i, m in enumerate(mentions):
        if not isinstance(m, Mapping):
            raise TypeError(f"mentions[{i}] must be a dict attribute -> value, got {type(m).__name__}")
        for name, value in m.items():
            if name not in values:
                raise ValueError(
                    f"mentions[{i}] names attribute {name!r}, which the evaluator does not know; "
                    f"known: {sorted(values)}"
                )
            if value not in values[name]:
                raise ValueError(f"mentions[{i}][{name!r}]={value!r} is not one of {tuple(values[name])}")


def alignment_from_predictions(
    predicted: Mapping[str, np.ndarray | Sequence[int]],
    mentions: Sequence[Mapping[str, str]],
    attribute_values: Mapping[str, Sequence[str]],
    label: str = "",
) -> AlignmentReport:
    """Score predicted attribute indices against caption mentions (the core of the metric).

    Args:
        predicted: attribute name -> [N] predicted value indices.
        mentions: per image, attribute name -> the value its caption mentions.
        attribute_values: the schema (value order = index order).

    Images whose caption mentions nothing are not scored (``n_scored`` < ``n_images``).

    Raises:
        ValueError: wrong number of mention dicts, unknown attributes or values, or no mentions at all.
    """
    n = len(mentions)
    _check_mentions(mentions, attribute_values, n)
    for name, pred in predicted.items():
        if len(pred) != n:
            raise ValueError(f"predicted[{name!r}] has {len(pred)} entries, expected {n} (one per image)")
    correct: dict[str, int] = {}
    counts: dict[str, int] = {}
    shares: list[float] = []
    for i, m in enumerate(mentions):
        if not m:
            continue
        hits = 0
        for name, value in m.items():
            if name not in predicted:
                raise ValueError(f"mentions[{i}] names {name!r} but there is no prediction for it")
            ok = int(predicted[name][i]) == list(attribute_values[name]).index(value)
            hits += ok
            correct[name] = correct.get(name, 0) + ok
            counts[name] = counts.get(name, 0) + 1
        shares.append(hits / len(m))
    if not shares:
        raise ValueError("no image has a mentioned attribute: nothing to score")
    order = [name for name in attribute_values if name in counts]
    return AlignmentReport(
        attribute_accuracy=float(np.mean(shares)),
        mention_accuracy=sum(correct.values()) / sum(counts.values()),
        per_attribute={name: correct[name] / counts[name] for name in order},
        counts={name: counts[name] for name in order},
        n_images=n,
        n_scored=len(shares),
        label=label,
    )


def evaluate_alignment(
    evaluator: AttributeEvaluator,
    images: Tensor | Iterable[Any],
    mentions: Sequence[Mapping[str, str]],
    *,
    batch_size: int = 128,
    label: str = "",
    bounds: SanityBounds | None = None,
) -> AlignmentReport:
    """Attribute accuracy of ``images`` against the attributes their captions mention.

    ``mentions[i]`` is the ``mentions`` dict of image ``i``'s caption (``attributes.jsonl``;
    :func:`caption_mentions` reads it). Attach ``bounds`` (:func:`sanity_bounds`) so that
    :meth:`AlignmentReport.format` prints the ceiling and chance level with the number.
    """
    _check_mentions(mentions, evaluator.attribute_values, len(mentions))
    preds = evaluator.predict(images, batch_size)
    if len(preds) != len(mentions):
        raise ValueError(f"got {len(preds)} images but {len(mentions)} mention dicts; give one dict per image")
    report = alignment_from_predictions(preds.predicted_indices(), mentions, evaluator.attribute_values, label)
    return report if bounds is None else _with_bounds(report, bounds)


def _with_bounds(report: AlignmentReport, bounds: SanityBounds) -> AlignmentReport:
    return dataclasses.replace(report, bounds=bounds)


# --------------------------------------------------------------------------------------------
# Sanity bounds on real images
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SanityBounds:
    """The metric on real images: own captions (ceiling) and other images' captions (chance)."""

    ceiling: AlignmentReport
    chance: AlignmentReport
    n_images: int
    seed: int
    split: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {
            "ceiling": self.ceiling.to_dict(),
            "chance": self.chance.to_dict(),
            "n_images": self.n_images,
            "seed": self.seed,
            "split": self.split,
        }

    def format(self) -> str:
        """One line per bound."""
        return (
            f"  sanity bounds on {self.n_images} real {self.split} images (seed {self.seed}): "
            f"own captions (ceiling) {self.ceiling.attribute_accuracy:.4f}, "
            f"shuffled captions (chance) {self.chance.attribute_accuracy:.4f}"
        )


def caption_mentions(dataset: Any, index: int, caption_index: int) -> dict[str, str]:
    """The attributes caption ``caption_index`` of item ``index`` mentions (``attributes.jsonl``).

    ``dataset`` is a :class:`~csagan.data.datasets.TextImageDataset` over a ToyBirds root.

    Raises:
        ValueError: the dataset has no ``attributes.jsonl`` or lacks the record/caption.
    """
    records = getattr(dataset, "attributes", None)
    if records is None:
        raise ValueError(
            f"dataset at {getattr(dataset, 'root', '?')} has no attributes.jsonl: alignment metrics need "
            "ToyBirds ground truth (`csagan data toybirds --out DIR`)"
        )
    key = dataset.keys[index]
    rec = records.get(key)
    if rec is None:
        raise ValueError(f"attributes.jsonl has no record for key {key!r}; regenerate the dataset")
    caps = rec.get("captions", [])
    if not 0 <= caption_index < len(caps):
        raise ValueError(f"key {key!r} has {len(caps)} captions in attributes.jsonl, asked for {caption_index}")
    return {str(k): str(v) for k, v in caps[caption_index]["mentions"].items()}


def _derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation with no fixed point (n >= 2): a random cyclic shift of a random order."""
    order = rng.permutation(n)
    out = np.empty(n, dtype=np.int64)
    out[order] = order[(np.arange(n) + 1) % n]
    return out


def sanity_bounds(
    evaluator: AttributeEvaluator, dataset: Any, n: int = 1000, seed: int = 0, batch_size: int = 128
) -> SanityBounds:
    """Ceiling and chance level of the attribute accuracy on real images of ``dataset``.

    ``min(n, len(dataset))`` items are drawn with ``numpy.random.default_rng(seed)``; each
    brings the image and caption the dataset gives for it (``dataset[i]``). The ceiling pairs
    every image with its own caption's mentions; the chance level with the mentions of
    another drawn image's caption (a random derangement, so never its own).

    Raises:
        ValueError: ``n`` < 2, or a dataset without ToyBirds ``attributes.jsonl``.
    """
    if n < 2 or len(dataset) < 2:
        raise ValueError(f"sanity bounds need n >= 2 and a dataset of >= 2 items, got n={n}, {len(dataset)} items")
    rng = np.random.default_rng(seed)
    m = min(int(n), len(dataset))
    indices = np.sort(rng.choice(len(dataset), size=m, replace=False))
    images: list[Tensor] = []
    own: list[dict[str, str]] = []
    for i in indices.tolist():
        item = dataset[i]
        images.append(item.image)
        own.append(caption_mentions(dataset, i, item.caption_index))
    shuffled = [own[j] for j in _derangement(m, rng)]
    preds = evaluator.predict(torch.stack(images), batch_size).predicted_indices()
    values = evaluator.attribute_values
    return SanityBounds(
        ceiling=alignment_from_predictions(preds, own, values, label="real, own captions"),
        chance=alignment_from_predictions(preds, shuffled, values, label="real, shuffled captions"),
        n_images=m,
        seed=seed,
        split=str(getattr(dataset, "split", "?")),
    )
