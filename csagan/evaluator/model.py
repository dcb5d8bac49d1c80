"""The attribute evaluator network: a small CNN that reads ToyBirds attributes back from images.

:class:`AttributeEvaluator` maps images to penultimate features (used by the domain FID,
Eq. 27), one logit vector per attribute (used by the alignment metric) and species logits
(used by the domain IS, Eq. 26); :meth:`AttributeEvaluator.predict` batches it into
:class:`EvaluatorPredictions` (NumPy, CPU). Images are float tensors ``[N, 3, H, W]`` in
``[-1, 1]`` (``uint8`` tensors are converted), resized to the network's ``image_size`` when needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from csagan.data.attributes import ATTRIBUTE_VALUES
from csagan.metrics.fid import iter_image_batches

__all__ = ["AttributeEvaluator", "EvaluatorOutput", "EvaluatorPredictions"]


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
