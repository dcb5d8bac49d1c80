"""ToyBirds attribute evaluator: exact text-image alignment metrics (complements Eqs. (26)-(27)).

FID (Eq. 27) and IS (Eq. 26) measure image distributions; they cannot tell whether an image
shows what its caption says. ToyBirds (:mod:`csagan.data.toybirds`) knows every image's
attributes and, for every caption, which attributes it mentions (``attributes.jsonl``). A
small CNN trained to read those attributes back from images (:class:`AttributeEvaluator`)
then measures alignment exactly:

* **attribute accuracy** - mean over images of the share of the attributes its caption
  mentions that the classifier predicts with the mentioned value (:func:`evaluate_alignment`);
  also per attribute and pooled over all mentions;
* **sanity bounds** - the same metric on real held-out images with their own captions (the
  ceiling the classifier allows) and with captions of other images (chance level), printed
  with every report (:func:`sanity_bounds`);
* **domain FID** - Eq. (27) on the evaluator's penultimate features (:func:`domain_fid`,
  reusing :func:`csagan.metrics.fid.frechet_distance`);
* **domain IS** - Eq. (26) on the evaluator's species head (:func:`domain_is`, reusing
  :func:`csagan.metrics.inception_score.inception_score`).

Training data (a choice, documented here and in the saved metadata): ToyBirds splits by
species (AttnGAN's split), so the test species never occur in the train split. Attributes
generalise across species, so all heads are trained on the **train split** only, minus a
stratified 10 % per species held out for validation; the test split (unseen species) is never
trained on, so the ceiling of :func:`sanity_bounds` on it is honest. The species head covers
the train species (``species_ids`` in the metadata): like Inception's ImageNet classes for IS,
it is a fixed label space in which test-caption images are scored, not their true labels.

Images everywhere are float tensors ``[N, 3, H, W]`` in ``[-1, 1]`` (the csagan convention;
``uint8`` tensors are converted), resized to the evaluator's ``image_size`` when needed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from csagan.data.attributes import ATTRIBUTE_VALUES
from csagan.devices import resolve_device as _resolve_device

__all__ = [
    "EVALUATOR_FORMAT",
    "TRAIN_COMMAND",
    "AlignmentReport",
    "AttributeEvaluator",
    "DomainFIDReport",
    "DomainISReport",
    "EvaluatorOutput",
    "EvaluatorPredictions",
    "SanityBounds",
    "alignment_from_predictions",
    "caption_mentions",
    "domain_fid",
    "domain_is",
    "evaluate_alignment",
    "load_evaluator",
    "eval_view",
    "render_random_birds",
    "sanity_bounds",
    "save_evaluator",
    "train_evaluator",
]

logger = logging.getLogger(__name__)

#: ``format`` entry of a saved evaluator file.
EVALUATOR_FORMAT = "csagan-attribute-evaluator"
_FORMAT_VERSION = 1
#: The command that makes an evaluator file (named in error messages).
TRAIN_COMMAND = "csagan evaluator train --data DIR --out PATH"
_FACING = "facing"


# --------------------------------------------------------------------------------------------
# The classifier
# --------------------------------------------------------------------------------------------


class EvaluatorOutput(NamedTuple):
    """What :meth:`AttributeEvaluator.forward` returns for a batch of ``B`` images."""

    features: Tensor
    """[B, feature_dim] penultimate features (post-ReLU; domain FID)."""
    attributes: dict[str, Tensor]
    """attribute name -> [B, n_values] logits (value order of the schema)."""
    species: Tensor
    """[B, n_species] logits over the species the evaluator was trained on (domain IS)."""


def _conv(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)
    )


def _to_model_range(images: Tensor) -> Tensor:
    """``uint8`` -> [-1, 1] floats; floats are checked to lie in [-1, 1] (small slack)."""
    if images.dtype == torch.uint8:
        return images.float().div(127.5).sub(1.0)
    if not images.is_floating_point():
        raise ValueError(f"images must be float in [-1, 1] or uint8, got dtype {images.dtype}")
    if images.numel() and (float(images.min()) < -1.01 or float(images.max()) > 1.01):
        raise ValueError(
            f"images must lie in [-1, 1] (csagan's convention), got values in "
            f"[{float(images.min()):.3g}, {float(images.max()):.3g}]; images in [0, 1] need `x * 2 - 1`"
        )
    return images.float()


class AttributeEvaluator(nn.Module):
    """A small CNN with one classification head per attribute plus a species head.

    Six 3x3 conv stages (BatchNorm + ReLU; strides 2, 2, 1, 2, 1, 2) reduce ``image_size``
    by 16; the flattened map goes through a linear layer to ``feature_dim`` features (ReLU),
    on which every head is a linear classifier. With ``width=16``, ``feature_dim=256`` at
    64 px and 150 species it has about 0.21 M parameters (0.4 MB in fp16). The spatial map is flattened rather
    than pooled because the attributes are tied to body parts (crown vs belly colour).

    Args:
        n_species: classes of the species head (>= 2).
        image_size: input side; a multiple of 16 (inputs of other sizes are resized).
        width: channels of the first stage.
        feature_dim: size of the penultimate feature vector.
        attribute_values: attribute name -> allowed value names (default: ToyBirds'
            :data:`~csagan.data.attributes.ATTRIBUTE_VALUES`).
        species_ids: the dataset class id of each species-head output (default 1..n).
    """

    def __init__(
        self,
        n_species: int,
        image_size: int = 64,
        width: int = 16,
        feature_dim: int = 256,
        attribute_values: Mapping[str, Sequence[str]] | None = None,
        species_ids: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if n_species < 2:
            raise ValueError(f"n_species={n_species}: the species head needs at least 2 classes")
        if image_size < 16 or image_size % 16:
            raise ValueError(f"image_size={image_size}: must be a multiple of 16 (e.g. 32, 64, 128)")
        if width < 1 or feature_dim < 1:
            raise ValueError(f"width={width} and feature_dim={feature_dim} must be >= 1")
        values = dict(ATTRIBUTE_VALUES if attribute_values is None else attribute_values)
        for name, vals in values.items():
            if len(vals) < 2 or len(set(vals)) != len(vals):
                raise ValueError(f"attribute {name!r} needs >= 2 distinct values, got {tuple(vals)}")
        self.attribute_values: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in values.items()}
        self.species_ids: tuple[int, ...] = (
            tuple(range(1, n_species + 1)) if species_ids is None else tuple(int(s) for s in species_ids)
        )
        if len(self.species_ids) != n_species:
            raise ValueError(f"species_ids has {len(self.species_ids)} entries, expected n_species={n_species}")
        self.n_species = n_species
        self.image_size = image_size
        self.width = width
        self.feature_dim = feature_dim
        w = width
        self.body = nn.Sequential(
            _conv(3, w, 2), _conv(w, 2 * w, 2), _conv(2 * w, 2 * w, 1), _conv(2 * w, 4 * w, 2),
            _conv(4 * w, 4 * w, 1), _conv(4 * w, w, 2),
        )  # fmt: skip
        side = image_size // 16
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(w * side * side, feature_dim), nn.ReLU(inplace=True))
        self.heads = nn.ModuleDict({name: nn.Linear(feature_dim, len(v)) for name, v in self.attribute_values.items()})
        self.species_head = nn.Linear(feature_dim, n_species)
        self.meta: dict[str, Any] = {}

    @property
    def attribute_names(self) -> tuple[str, ...]:
        """Attribute names, in head order."""
        return tuple(self.attribute_values)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (stored in saved files)."""
        return {
            "n_species": self.n_species,
            "image_size": self.image_size,
            "width": self.width,
            "feature_dim": self.feature_dim,
            "attribute_values": {k: list(v) for k, v in self.attribute_values.items()},
            "species_ids": list(self.species_ids),
        }

    def forward(self, images: Tensor) -> EvaluatorOutput:
        """``images`` [B, 3, H, W] in [-1, 1] (or uint8) -> :class:`EvaluatorOutput`."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape [B, 3, H, W], got {tuple(images.shape)}")
        x = _to_model_range(images)
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True)
        feats = self.embed(self.body(x))
        return EvaluatorOutput(
            features=feats,
            attributes={name: head(feats) for name, head in self.heads.items()},
            # The species head reads detached features: it serves domain IS only and must not
            # push the shared features towards species identity (a shortcut for the attributes).
            species=self.species_head(feats.detach()),
        )

    @torch.no_grad()
    def predict(self, images: Tensor | Iterable[Any], batch_size: int = 128) -> EvaluatorPredictions:
        """Batched inference (eval mode, restored afterwards); results on the CPU as NumPy.

        ``images`` is an [N, 3, H, W] tensor or an iterable of such batches (e.g. a
        DataLoader yielding tensors or tuples whose first item is the image batch).
        """
        from csagan.metrics.fid import iter_image_batches

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        feats: list[Tensor] = []
        species: list[Tensor] = []
        attrs: dict[str, list[Tensor]] = {name: [] for name in self.attribute_values}
        try:
            for batch in iter_image_batches(images, batch_size):
                out = self(batch.to(device))
                feats.append(out.features.float().cpu())
                species.append(out.species.float().cpu())
                for name, store in attrs.items():
                    store.append(out.attributes[name].float().cpu())
        finally:
            self.train(was_training)
        if not feats:
            raise ValueError("no images were given (the tensor or iterable is empty)")
        return EvaluatorPredictions(
            features=torch.cat(feats).numpy(),
            species_logits=torch.cat(species).numpy(),
            attribute_logits={name: torch.cat(parts).numpy() for name, parts in attrs.items()},
            attribute_values=dict(self.attribute_values),
        )


@dataclass(frozen=True)
class EvaluatorPredictions:
    """The evaluator's outputs for ``N`` images (NumPy, CPU)."""

    features: np.ndarray  # [N, feature_dim]
    species_logits: np.ndarray  # [N, n_species]
    attribute_logits: dict[str, np.ndarray]  # name -> [N, n_values]
    attribute_values: dict[str, tuple[str, ...]]

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def predicted_indices(self) -> dict[str, np.ndarray]:
        """attribute name -> [N] predicted value index (argmax of the logits)."""
        return {name: logits.argmax(axis=1) for name, logits in self.attribute_logits.items()}

    def predicted_values(self, index: int) -> dict[str, str]:
        """Predicted value names of image ``index``."""
        return {
            name: self.attribute_values[name][int(logits[index].argmax())]
            for name, logits in self.attribute_logits.items()
        }


# --------------------------------------------------------------------------------------------
# Alignment metric
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Domain FID / IS
# --------------------------------------------------------------------------------------------


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
    from csagan.metrics.fid import compute_statistics, frechet_distance

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
    from csagan.metrics.inception_score import inception_score

    logits = evaluator.predict(images, batch_size).species_logits
    res = inception_score(logits, splits=splits)
    return DomainISReport(
        mean=res.mean, std=res.std, n_images=int(logits.shape[0]), splits=splits, n_classes=int(logits.shape[1])
    )


# --------------------------------------------------------------------------------------------
# Save / load
# --------------------------------------------------------------------------------------------


def save_evaluator(evaluator: AttributeEvaluator, path: str | Path, meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``evaluator`` (fp16 weights, config, metadata) to ``path`` atomically; return the path.

    The file is a plain dict of tensors and JSON-like values, readable with
    ``torch.load(weights_only=True)``. ``meta`` (JSON-able) is merged over ``evaluator.meta``.
    """
    from csagan import __version__

    out = Path(path)
    merged = {**evaluator.meta, **(dict(meta) if meta else {})}
    merged.setdefault("csagan_version", __version__)
    try:
        meta_json = json.dumps(merged, sort_keys=True)
    except TypeError as exc:
        raise ValueError(f"evaluator metadata must be JSON-serialisable: {exc}") from exc
    state = {
        k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
        for k, v in evaluator.state_dict().items()
    }
    payload = {
        "format": EVALUATOR_FORMAT,
        "format_version": _FORMAT_VERSION,
        "config_json": json.dumps(evaluator.config()),  # key order = head order
        "meta_json": meta_json,
        "state_dict": state,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        torch.save(payload, tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def load_evaluator(path: str | Path, map_location: str | torch.device = "cpu") -> AttributeEvaluator:
    """Load a file written by :func:`save_evaluator` / :func:`train_evaluator` (eval mode, fp32).

    Raises:
        FileNotFoundError: the file does not exist (the message names the training command).
        ValueError: the file is not a csagan attribute evaluator.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"attribute evaluator file not found: {p}. Train one on a ToyBirds dataset with "
            f"`{TRAIN_COMMAND}` (e.g. --out {p})"
        )
    try:
        payload = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # any unpickling failure means "not our file"
        raise ValueError(f"{p} is not a readable evaluator file ({exc}); retrain it with `{TRAIN_COMMAND}`") from exc
    if not isinstance(payload, dict) or payload.get("format") != EVALUATOR_FORMAT:
        raise ValueError(
            f"{p} is not a csagan attribute evaluator (no format={EVALUATOR_FORMAT!r}); make one with `{TRAIN_COMMAND}`"
        )
    if int(payload.get("format_version", -1)) > _FORMAT_VERSION:
        raise ValueError(f"{p} was written by a newer csagan (format_version {payload['format_version']}); upgrade")
    config = json.loads(payload["config_json"])
    model = AttributeEvaluator(**config)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in payload["state_dict"].items()}
    model.load_state_dict(state)
    model.meta = json.loads(payload["meta_json"])
    return model.to(map_location).eval()


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------




@dataclass
class _SplitData:
    images: Tensor  # uint8 [N, 3, S, S]
    targets: Tensor  # long [N, n_attributes] value indices
    class_ids: list[int] = field(default_factory=list)


def _load_split(dataset: Any, values: Mapping[str, Sequence[str]], progress: bool) -> _SplitData:
    """All images of a split (as the dataset's eval transform gives them) and their attribute targets."""
    from tqdm import tqdm

    records = dataset.attributes
    if records is None:
        raise FileNotFoundError(
            f"{Path(dataset.root) / 'attributes.jsonl'} not found: the evaluator trains on ToyBirds ground "
            "truth; make a dataset with `csagan data toybirds --out DIR`"
        )
    n = len(dataset)
    size = dataset.image_size
    images = torch.empty((n, 3, size, size), dtype=torch.uint8)
    targets = torch.empty((n, len(values)), dtype=torch.long)
    names = list(values)
    for i in tqdm(range(n), disable=not progress, desc=f"load {dataset.split}", unit="img"):
        img = dataset[i].image
        images[i] = img.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)
        key = dataset.keys[i]
        rec = records.get(key)
        if rec is None:
            raise ValueError(f"attributes.jsonl has no record for {key!r}; regenerate the dataset")
        for j, name in enumerate(names):
            try:
                targets[i, j] = list(values[name]).index(rec["attributes"][name])
            except (KeyError, ValueError):
                raise ValueError(
                    f"attributes.jsonl record {key!r}: attribute {name!r} missing or not in {tuple(values[name])}"
                ) from None
    return _SplitData(images=images, targets=targets, class_ids=list(dataset.class_ids))


def eval_view(bird: Any, image_size: int, image_format: str = "jpg") -> Tensor:
    """A rendered bird (:class:`csagan.data.toybirds.RenderedBird`) as a ToyBirds dataset item shows
    it with the ``eval`` transform: uint8 ``[3, S, S]`` (stored as ``image_format`` like the dataset
    writes it, JPEG's loss included; AttnGAN's box crop of the box as ``bounding_boxes.txt`` stores
    it, then resize and centre crop)."""
    from csagan.data.datasets import _apply_transform, crop_to_bbox
    from csagan.data.toybirds import as_stored

    x, y, w, h = (float(f"{v:.2f}") for v in bird.bbox)  # bounding_boxes.txt keeps 2 decimals
    view = crop_to_bbox(as_stored(bird.image, image_format), (int(x), int(y), int(w), int(h)))
    img = _apply_transform(view, image_size, "eval", torch.Generator())
    return img.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def render_random_birds(
    n: int,
    image_size: int,
    seed: int,
    values: Mapping[str, Sequence[str]] | None = None,
    progress: bool = False,
    image_format: str = "jpg",
) -> _SplitData:
    """``n`` ToyBirds with uniformly random attributes, seen as the dataset's eval view.

    In ToyBirds (as in CUB) a species fixes most attributes, so a classifier trained on the train
    split alone can read a species and recall its colours instead of looking at each part; on the
    unseen test species that shortcut fails. Birds whose attributes are drawn independently
    (:func:`csagan.data.toybirds.sample_attributes`) carry no such correlation. Each one is
    rendered by :func:`csagan.data.toybirds.render_bird`, cropped around its box like AttnGAN
    (:func:`csagan.data.datasets.crop_to_bbox`) and resized/centre-cropped like the ``eval``
    transform after a round trip through ``image_format`` (the dataset's storage: ``"jpg"``, the
    ToyBirds default, or ``"png"``), so they look exactly like dataset images. ``class_ids`` are
    all ``-1`` (no species).
    """
    from tqdm import tqdm

    from csagan.data.toybirds import render_bird, sample_attributes

    if n < 0:
        raise ValueError(f"n={n}: the number of random birds must be >= 0")
    names = list(ATTRIBUTE_VALUES if values is None else values)
    vals = dict(ATTRIBUTE_VALUES if values is None else values)
    rng = np.random.default_rng([seed, 0x7B1D])
    images = torch.empty((n, 3, image_size, image_size), dtype=torch.uint8)
    targets = torch.empty((n, len(names)), dtype=torch.long)
    for i in tqdm(range(n), disable=not progress, desc="render random birds", unit="img"):
        attrs = sample_attributes(rng)
        images[i] = eval_view(render_bird(attrs, image_size, rng), image_size, image_format)
        record = attrs.to_dict()
        for j, name in enumerate(names):
            targets[i, j] = list(vals[name]).index(record[name])
    return _SplitData(images=images, targets=targets, class_ids=[-1] * n)


def _stratified_holdout(class_ids: Sequence[int], fraction: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Indices (train, held-out): ``round(fraction * n_c)`` images of each class with >= 2 images held out."""
    ids = torch.tensor(list(class_ids))
    train: list[Tensor] = []
    held: list[Tensor] = []
    for c in sorted(set(class_ids)):
        idx = torch.nonzero(ids == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        k = min(len(idx) - 1, max(1, round(fraction * len(idx)))) if len(idx) >= 2 and fraction > 0 else 0
        held.append(idx[:k])
        train.append(idx[k:])
    return torch.cat(train).sort().values, torch.cat(held).sort().values


def _augment(x: Tensor, facing_col: int | None, targets: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random shift (±6 %), scale (0.9-1.1) and horizontal flip; a flip swaps ``facing``."""
    b = x.shape[0]
    scale = 1.0 + (torch.rand(b, generator=gen) * 0.2 - 0.1)
    shift = torch.rand(b, 2, generator=gen) * 0.12 - 0.06
    flip = torch.rand(b, generator=gen) < 0.5 if facing_col is not None else torch.zeros(b, dtype=torch.bool)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = scale * torch.where(flip, -1.0, 1.0)
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if facing_col is not None and flip.any():
        targets = targets.clone()
        targets[flip, facing_col] = 1 - targets[flip, facing_col]
    return out, targets


@torch.no_grad()
def _accuracy(
    model: AttributeEvaluator, data: _SplitData, idx: Tensor | None, species_index: dict[int, int]
) -> dict[str, float]:
    """Per-attribute (and, for known species, species) accuracy of ``model`` on ``data[idx]``."""
    sel = torch.arange(data.images.shape[0]) if idx is None else idx
    if len(sel) == 0:
        return {}
    preds = model.predict(data.images[sel], batch_size=256)
    out: dict[str, float] = {}
    for j, (name, pred) in enumerate(preds.predicted_indices().items()):
        out[name] = float((torch.from_numpy(pred) == data.targets[sel, j]).float().mean())
    out["mean_attribute"] = float(np.mean([out[n] for n in model.attribute_names]))
    species = [species_index.get(data.class_ids[int(i)], -1) for i in sel]
    if all(s >= 0 for s in species):
        out["species"] = float((preds.species_logits.argmax(1) == np.asarray(species)).mean())
    return out


def _file_digest(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        if p.is_file():
            h.update(p.name.encode())
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def train_evaluator(
    data_dir: str | Path,
    out_path: str | Path,
    *,
    epochs: int = 6,
    batch_size: int = 64,
    lr: float = 2e-3,
    image_size: int = 64,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    width: int = 16,
    feature_dim: int = 256,
    holdout_fraction: float = 0.1,
    bf16: bool = False,
    random_birds: int = 0,
) -> Path:
    """Train an :class:`AttributeEvaluator` on a ToyBirds dataset and save it to ``out_path``.

    Trains every head on the train split (train species) minus a stratified
    ``holdout_fraction`` per species; after training it reports per-attribute accuracy on
    that held-out part and on the test split (unseen species), prints them when
    ``progress`` and stores them in the file's metadata. Reproducible for a seed: weights
    are initialised inside ``torch.random.fork_rng`` (the global RNG is left untouched),
    batches and augmentation draw from explicit generators. Adam with a cosine learning-rate
    schedule; loss = sum of the heads' cross-entropies (the species head is trained on
    detached features, so only the attribute heads shape the shared features). Reported accuracies are those of the
    saved (fp16-rounded) weights.

    Args:
        data_dir: a ToyBirds root (``csagan data toybirds --out DIR``).
        out_path: file to write (parents are created).
        epochs, batch_size, lr: optimisation settings.
        image_size: evaluator input side (multiple of 16; the dataset is read at this size).
        seed: seed of initialisation, holdout, batch order and augmentation.
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ...
        progress: progress bars and printed accuracy tables.
        width, feature_dim: network size (:class:`AttributeEvaluator`).
        holdout_fraction: share of each train species' images held out for validation.
        bf16: autocast the forward pass to bfloat16 (faster on CPUs with AMX); losses in fp32.
        random_birds: also train the attribute heads on this many freshly rendered birds with
            independently random attributes (:func:`render_random_birds`), which breaks the
            species -> attributes shortcut and lifts accuracy on unseen species (the species head
            still sees train-split images only).

    Raises:
        FileNotFoundError: ``data_dir`` has no ``attributes.jsonl`` (not ToyBirds).
        ValueError: bad settings.
    """
    from tqdm import tqdm

    from csagan.data.datasets import TextImageDataset

    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}")
    if not 0.0 <= holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction={holdout_fraction}: must be in [0, 1)")
    if seed < 0:
        raise ValueError(f"seed={seed}: must be >= 0")
    root = Path(data_dir)
    if not (root / "attributes.jsonl").is_file():
        raise FileNotFoundError(
            f"{root / 'attributes.jsonl'} not found: {root} is not a ToyBirds dataset; make one with "
            "`csagan data toybirds --out DIR` and pass that DIR"
        )
    dev = _resolve_device(device)
    start = time.perf_counter()
    values = dict(ATTRIBUTE_VALUES)
    train_ds = TextImageDataset(root, "train", image_size=image_size, transform="eval", seed=seed)
    train = _load_split(train_ds, values, progress)
    test: _SplitData | None = None
    if (root / "test" / "filenames.pickle").is_file():
        test = _load_split(TextImageDataset(root, "test", image_size=image_size, transform="eval"), values, progress)
    species_ids = sorted(set(train.class_ids))
    if len(species_ids) < 2:
        raise ValueError(f"the train split of {root} has {len(species_ids)} species; the species head needs >= 2")
    species_index = {c: i for i, c in enumerate(species_ids)}
    gen = torch.Generator().manual_seed(seed)
    train_idx, held_idx = _stratified_holdout(train.class_ids, holdout_fraction, gen)
    species_t = torch.tensor([species_index[c] for c in train.class_ids])
    # The training pool: the train split minus the holdout, plus optional random-attribute birds
    # (species label -1: ignored by the species head's loss).
    pool_images, pool_targets, pool_species = train.images[train_idx], train.targets[train_idx], species_t[train_idx]
    if random_birds:
        fmt = json.loads((root / "toybirds.json").read_text()).get("image_format", "png") if (
            root / "toybirds.json").is_file() else "png"  # sets made before the JPEG default are PNG
        extra = render_random_birds(random_birds, image_size, seed, values, progress, image_format=fmt)
        pool_images = torch.cat([pool_images, extra.images])
        pool_targets = torch.cat([pool_targets, extra.targets])
        pool_species = torch.cat([pool_species, torch.full((random_birds,), -1, dtype=torch.long)])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AttributeEvaluator(
            len(species_ids), image_size, width, feature_dim, attribute_values=values, species_ids=species_ids
        )
    model.to(dev)
    facing_col = list(values).index(_FACING) if _FACING in values else None
    steps_per_epoch = math.ceil(len(pool_images) / batch_size)
    total_steps = epochs * steps_per_epoch
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total_steps) / total_steps))
    )
    names = list(values)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(pool_images), generator=gen)
        running = 0.0
        bar = tqdm(range(steps_per_epoch), disable=not progress, desc=f"evaluator epoch {epoch + 1}/{epochs}")
        for step in bar:
            idx = order[step * batch_size : (step + 1) * batch_size]
            x = pool_images[idx].float().div(127.5).sub(1.0)
            x, tgt = _augment(x, facing_col, pool_targets[idx], gen)
            x, tgt, sp = x.to(dev), tgt.to(dev), pool_species[idx].to(dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                out = model(x)
            loss = F.cross_entropy(out.species.float(), sp, ignore_index=-1) if bool((sp >= 0).any()) else 0.0 * out.species.sum()
            for j, name in enumerate(names):
                loss = loss + F.cross_entropy(out.attributes[name].float(), tgt[:, j])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running = 0.9 * running + 0.1 * float(loss.detach()) if step else float(loss.detach())
            bar.set_postfix(loss=f"{running:.3f}")
        logger.info("evaluator epoch %d/%d: loss %.4f", epoch + 1, epochs, running)
    # Evaluate the weights as they will be saved (fp16-rounded).
    with torch.no_grad():
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.copy_(p.half().float())
    model.eval()
    heldout = _accuracy(model, train, held_idx, species_index)
    test_acc = _accuracy(model, test, None, species_index) if test is not None else {}
    seconds = time.perf_counter() - start
    table = _accuracy_table(heldout, test_acc)
    if progress:
        print(table)
        print(f"evaluator trained in {seconds:.0f} s on {dev}")
    else:
        logger.info("evaluator accuracy (trained in %.0f s on %s):\n%s", seconds, dev, table)
    model.meta = {
        "data_dir": str(root),
        "data_sha256": _file_digest([root / "attributes.jsonl", root / "train" / "filenames.pickle"]),
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "bf16": bf16,
        "holdout_fraction": holdout_fraction,
        "n_train_images": len(train_idx),
        "n_random_birds": random_birds,
        "n_heldout_images": len(held_idx),
        "n_test_images": 0 if test is None else int(test.images.shape[0]),
        "training_data": "train split (train species) minus a stratified holdout"
        + (f", plus {random_birds} rendered birds with independently random attributes" if random_birds else "")
        + "; species head = train species",
        "heldout_accuracy": heldout,
        "test_split_accuracy": test_acc,
        "train_seconds": round(seconds, 1),
        "torch_version": torch.__version__,
    }
    return save_evaluator(model, out_path)


def _accuracy_table(heldout: Mapping[str, float], test: Mapping[str, float]) -> str:
    keys = list(dict.fromkeys([*heldout, *test]))
    lines = [f"{'attribute':<15}{'held-out':>10}{'test split':>12}"]
    for k in keys:
        a = f"{heldout[k]:.4f}" if k in heldout else "-"
        b = f"{test[k]:.4f}" if k in test else "-"
        lines.append(f"{k:<15}{a:>10}{b:>12}")
    return "\n".join(lines)
