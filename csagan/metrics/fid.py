"""Fréchet Inception Distance, Eq. (27), and batched Inception feature extraction.

    FID = ‖μ_x − μ_y‖² + Tr(Σ_x + Σ_y − 2 (Σ_x Σ_y)^{1/2})                     (27)

:func:`frechet_distance` follows pytorch-fid's numerical recipe exactly (so the two agree
to rounding): ``scipy.linalg.sqrtm(Σ1 Σ2)``; if the result is not finite, add ``eps·I`` to
both covariances and retry; if the square root is complex, fail when an imaginary
diagonal entry exceeds 1e-3 and otherwise keep the real part. Unlike pytorch-fid, the
result says whether either fallback happened (:class:`FrechetResult`).

Feature extraction (:func:`extract_features`) runs batched under
``torch.inference_mode()`` in fp32 (bf16 is opt-in and marked in the report, because FID
must be computed in fp32 to be comparable), with channels-last memory format and no
per-image Python work. Every result carries the network's ``protocol`` and ``weights_id``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.linalg
import torch
from torch import Tensor, nn

ImageSource = Tensor | np.ndarray | Iterable[Any]
#: Label of a feature set or statistics whose network is not recorded.
UNKNOWN = "unknown"


@dataclass(frozen=True)
class FrechetResult:
    """Value of Eq. (27) plus how it was obtained.

    Attributes:
        value: the Fréchet distance.
        used_eps_offset: ``sqrtm(Σ1Σ2)`` was not finite, so ``eps·I`` was added to both Σ.
        max_imag: largest |imaginary part| on the diagonal of the matrix square root that
            was discarded (0.0 when the square root was real).
    """

    value: float
    used_eps_offset: bool
    max_imag: float

    @property
    def discarded_imaginary(self) -> bool:
        """True when a (small) imaginary part of the square root was dropped."""
        return self.max_imag > 0.0

    def __float__(self) -> float:
        return self.value


def _check_gaussian(mu: np.ndarray, sigma: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1:
        raise ValueError(f"mu{name} must be a vector, got shape {mu.shape}")
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"sigma{name} must have shape {(mu.shape[0],) * 2} to match mu{name}, got {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"mu{name}/sigma{name} contain NaN or inf; check the features they came from")
    return mu, sigma


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> FrechetResult:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), Eq. (27).

    Raises:
        ValueError: mismatched shapes, non-finite inputs, or a square root whose imaginary
            diagonal exceeds 1e-3 (the covariances are too ill-conditioned: use more images).
    """
    mu1, sigma1 = _check_gaussian(mu1, sigma1, "1")
    mu2, sigma2 = _check_gaussian(mu2, sigma2, "2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"the two Gaussians have different dimensions: {mu1.shape[0]} vs {mu2.shape[0]}")
    diff = mu1 - mu2
    with warnings.catch_warnings():  # a singular product is handled (and reported) below
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    used_offset = False
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
        used_offset = True
    max_imag = 0.0
    if np.iscomplexobj(covmean):
        max_imag = float(np.max(np.abs(np.diagonal(covmean).imag)))
        if max_imag > 1e-3:
            raise ValueError(
                f"sqrtm(sigma1 @ sigma2) has an imaginary diagonal component of {max_imag:.3g} (> 1e-3): "
                "the covariances are too ill-conditioned; use more images than feature dimensions"
            )
        covmean = covmean.real
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    return FrechetResult(value=value, used_eps_offset=used_offset, max_imag=max_imag)


def compute_statistics(features: np.ndarray | Tensor | Features) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) features → (μ, Σ) in float64, ``Σ = np.cov(features, rowvar=False)``."""
    if isinstance(features, Features):
        features = features.pool
    if isinstance(features, Tensor):
        features = features.detach().cpu().numpy()
    arr = np.asarray(features, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ValueError(f"features must have shape (N >= 2, D), got {arr.shape}")
    return arr.mean(axis=0), np.cov(arr, rowvar=False)


@dataclass(frozen=True)
class Features:
    """Inception outputs of an image set, labelled with the network that produced them."""

    pool: np.ndarray
    """(N, 2048) float32 pool features."""
    logits: np.ndarray | None
    """(N, C) float32 ``logits_unbiased`` (no FC bias) when requested, else None."""
    protocol: str
    weights_id: str
    precision: str = "fp32"

    def __len__(self) -> int:
        return int(self.pool.shape[0])


@dataclass(frozen=True)
class FIDReport:
    """A FID value with everything needed to judge whether it is comparable to another."""

    fid: float
    used_eps_offset: bool
    max_imag: float
    num_images_1: int
    num_images_2: int
    protocol: str
    weights_id: str
    precision: str = "fp32"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def iter_image_batches(source: ImageSource, batch_size: int) -> Iterator[Tensor]:
    """Yield image tensors of at most ``batch_size``; loaders may yield tuples (image first)
    or dicts with an ``"image"`` key."""
    if isinstance(source, np.ndarray):
        source = torch.from_numpy(source)
    if isinstance(source, Tensor):
        if source.ndim != 4:
            raise ValueError(f"images must have shape (N, 3, H, W), got {tuple(source.shape)}")
        yield from torch.split(source, batch_size)
        return
    for item in source:
        if isinstance(item, dict):
            if "image" not in item:
                raise ValueError(f"loader yielded a dict without an 'image' key (keys: {sorted(item)})")
            item = item["image"]
        elif isinstance(item, (tuple, list)):
            item = item[0]
        if isinstance(item, np.ndarray):
            item = torch.from_numpy(item)
        if not isinstance(item, Tensor):
            raise TypeError(f"loader must yield image tensors (N, 3, H, W), got {type(item).__name__}")
        if item.ndim == 3:
            item = item.unsqueeze(0)
        yield from torch.split(item, batch_size)


def extract_features(
    images_or_loader: ImageSource,
    model: nn.Module,
    batch_size: int = 50,
    device: torch.device | str | None = None,
    progress: bool = True,
    *,
    with_logits: bool = False,
    bf16: bool = False,
    channels_last: bool = True,
) -> Features:
    """Run ``model`` (an :class:`~csagan.metrics.inception_fid.FIDInceptionV3`) over images.

    Args:
        images_or_loader: an (N, 3, H, W) tensor/array, or an iterable of such batches
            (a DataLoader yielding tensors, tuples whose first item is the image, or dicts
            with ``"image"``). Value range as declared by ``model.input_range``.
        model: the feature network; moved to ``device`` and put in eval mode.
        batch_size: images per forward pass.
        device: where to run; defaults to the device of the model's parameters.
        progress: show a tqdm bar.
        with_logits: also return the 1008-way ``logits_unbiased`` (for IS, Eq. 26).
        bf16: autocast to bfloat16 (faster on CPUs with AMX / on GPUs). Off by default;
            FID must be computed in fp32 — bf16 results are marked ``precision="bf16"``.
        channels_last: use channels-last memory format (faster convolutions).

    Returns:
        :class:`Features` labelled with ``model.protocol`` and ``model.weights_id``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    features_fn = getattr(model, "features", None)
    if features_fn is None:
        raise ValueError("model must be an FIDInceptionV3 (it needs a .features(images) method)")
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    was_training = model.training
    model.eval().to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    total = len(images_or_loader) if isinstance(images_or_loader, (Tensor, np.ndarray)) else None
    pools: list[Tensor] = []
    logits: list[Tensor] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="Inception features", unit="img")
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            for batch in iter_image_batches(images_or_loader, batch_size):
                batch = batch.to(device, non_blocking=True)
                if channels_last:
                    batch = batch.contiguous(memory_format=torch.channels_last)
                out = features_fn(batch)
                pools.append(out.pool.float().cpu())
                if with_logits:
                    logits.append(out.logits_unbiased.float().cpu())
                if bar is not None:
                    bar.update(batch.shape[0])
    finally:
        if bar is not None:
            bar.close()
        model.train(was_training)
    if not pools:
        raise ValueError("no images were given (the tensor or loader is empty)")
    return Features(
        pool=torch.cat(pools).numpy(),
        logits=torch.cat(logits).numpy() if with_logits else None,
        protocol=str(getattr(model, "protocol", "unknown")),
        weights_id=str(getattr(model, "weights_id", "unknown")),
        precision="bf16" if bf16 else "fp32",
    )


@dataclass(frozen=True)
class ReferenceStats:
    """Gaussian statistics (μ, Σ of Eq. 27) of an image set's Inception features, with their provenance
    (stored as ``.npz`` by :mod:`csagan.metrics.stats`)."""

    mu: np.ndarray
    sigma: np.ndarray
    num_images: int = -1
    protocol: str = UNKNOWN
    weights_id: str = UNKNOWN

    @classmethod
    def from_features(cls, features: Features) -> ReferenceStats:
        """Compute μ and Σ (float64) of labelled features."""
        mu, sigma = compute_statistics(features)
        return cls(mu, sigma, len(features), features.protocol, features.weights_id)


def fid_from_features(features_1: Features, features_2: Features | ReferenceStats, eps: float = 1e-6) -> FIDReport:
    """FID (Eq. 27) between two labelled feature sets (or a set and reference statistics).

    Raises:
        ValueError: if the two sides were computed with different protocols or weights
            (known on both sides), which would make the number meaningless.
    """
    mu1, s1 = compute_statistics(features_1)
    if isinstance(features_2, ReferenceStats):
        mu2, s2, n2 = features_2.mu, features_2.sigma, features_2.num_images
    else:
        mu2, s2 = compute_statistics(features_2)
        n2 = len(features_2)
    for field in ("protocol", "weights_id"):
        a, b = getattr(features_1, field), getattr(features_2, field)
        if "unknown" not in (a, b) and a != b:
            raise ValueError(
                f"cannot compare features with {field}={a!r} against {field}={b!r}: recompute both "
                "with the same Inception network"
            )
    res = frechet_distance(mu1, s1, mu2, s2, eps=eps)
    return FIDReport(
        fid=res.value,
        used_eps_offset=res.used_eps_offset,
        max_imag=res.max_imag,
        num_images_1=len(features_1),
        num_images_2=int(n2),
        protocol=features_1.protocol,
        weights_id=features_1.weights_id,
        precision=features_1.precision,
    )
