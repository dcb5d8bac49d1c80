"""Reference statistics (μ, Σ) of Eq. (27) for a dataset split or a folder of images.

What ``csagan fid-stats`` runs. The result is a :class:`~csagan.metrics.stats.ReferenceStats`
labelled with the network's protocol and weights, saved as pytorch-fid's ``.npz``
(:func:`~csagan.metrics.stats.save_stats`).

Images are quantised to ``uint8`` before the Inception network sees them
(:func:`quantize_images`), as if they had been written to PNG files: real images, generated
images and image folders then go through the same pre-processing (``x / 255``, bilinear
resize to 299, ``2x − 1``; :meth:`~csagan.metrics.inception_fid.FIDInceptionV3.preprocess`).

Dataset splits (:func:`split_statistics`): one pass takes every image once with the
dataset's deterministic ``eval`` transform (AttnGAN's resize to ``size · 76/64`` and centre
crop). ``passes > 1`` gives DF-GAN's *augmented* reference set (its CUB statistics use the
test set several times over): every pass takes a random crop and flip of every image, drawn
from ``(seed, pass, index)`` (:class:`~csagan.data.datasets.TextImageDataset`), so the set is
reproducible. Folders (:func:`folder_statistics`): the image files directly in the folder with
pytorch-fid's extensions, in sorted order (pytorch-fid's own file selection), at their own size
unless ``image_size`` is given.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from csagan.data.datasets import TextImageDataset
from csagan.metrics.fid import extract_features
from csagan.metrics.stats import ReferenceStats

__all__ = [
    "IMAGE_EXTENSIONS",
    "folder_statistics",
    "iter_folder_images",
    "iter_split_images",
    "list_images",
    "quantize_images",
    "sample_items",
    "split_statistics",
]

IMAGE_EXTENSIONS = ("bmp", "jpeg", "jpg", "pgm", "png", "ppm", "tif", "tiff", "webp")
"""File extensions read from a folder (pytorch-fid's list)."""


def quantize_images(images: Tensor) -> Tensor:
    """Float images [N, 3, H, W] in [−1, 1] → ``uint8`` (``round((x + 1) · 127.5)``, as a PNG stores them)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape [N, 3, H, W], got {tuple(images.shape)}")
    return images.detach().float().cpu().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def sample_items(n_items: int, max_images: int | None, seed: int) -> np.ndarray:
    """Indices ``0..n_items-1`` (all of them, or a seeded, sorted subset of ``max_images``)."""
    if n_items < 1:
        raise ValueError("the split has no images")
    if max_images is None or max_images >= n_items:
        return np.arange(n_items)
    if max_images < 2:
        raise ValueError(f"max_images={max_images}: Eq. (27) needs the covariance of at least 2 images")
    return np.sort(np.random.default_rng(seed).choice(n_items, size=max_images, replace=False))


def iter_split_images(dataset: Any, items: Sequence[tuple[int, int]], batch_size: int = 50) -> Iterator[Tensor]:
    """``uint8`` batches of ``dataset[(index, epoch)]`` images for the ``(index, epoch)`` pairs in ``items``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        yield quantize_images(torch.stack([dataset[(int(i), int(e))].image for i, e in chunk]))


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly in ``folder`` (:data:`IMAGE_EXTENSIONS`, any case), sorted by path.

    Raises:
        FileNotFoundError: the folder does not exist. ValueError: it holds fewer than 2 images.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower().lstrip(".") in IMAGE_EXTENSIONS)
    if len(files) < 2:
        raise ValueError(
            f"{root} holds {len(files)} image file(s) ({', '.join(IMAGE_EXTENSIONS)}); "
            "reference statistics need at least 2 images"
        )
    return files


def _read_image(path: Path, image_size: int | None) -> Tensor:
    from PIL import Image

    with Image.open(path) as img:
        rgb = img.convert("RGB")
        if image_size is not None and rgb.size != (image_size, image_size):
            rgb = rgb.resize((image_size, image_size), Image.Resampling.BICUBIC)
        return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1)


def iter_folder_images(files: Sequence[Path], batch_size: int = 50, image_size: int | None = None) -> Iterator[Tensor]:
    """``uint8`` [B, 3, H, W] batches of image files (RGB); sizes must agree unless ``image_size`` is set.

    Raises:
        ValueError: images of different sizes in one set without ``image_size``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    first: tuple[int, ...] | None = None
    for start in range(0, len(files), batch_size):
        batch = [_read_image(p, image_size) for p in files[start : start + batch_size]]
        for path, img in zip(files[start : start + batch_size], batch, strict=True):
            first = first or tuple(img.shape)
            if tuple(img.shape) != first:
                raise ValueError(
                    f"{path} is {img.shape[2]}x{img.shape[1]} but the first image is {first[2]}x{first[1]}; "
                    "pass image_size (--image-size) to resize all images to one size"
                )
        yield torch.stack(batch)


def split_statistics(
    data_dir: str | os.PathLike[str],
    model: nn.Module,
    *,
    split: str = "test",
    image_size: int = 256,
    passes: int = 1,
    max_images: int | None = None,
    seed: int = 0,
    batch_size: int = 50,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> ReferenceStats:
    """Reference statistics (Eq. 27's μ, Σ) of a dataset split's images (module docstring).

    Args:
        data_dir: dataset root in the AttnGAN layout.
        model: an :class:`~csagan.metrics.inception_fid.FIDInceptionV3`.
        split: ``"train"`` or ``"test"``.
        image_size: side the images are read at; use the generator's output size so that
            real and generated images are resized to 299 alike.
        passes: passes over the split (``> 1``: random crops and flips, DF-GAN's augmented set).
        max_images: use a seeded subset of this many images per pass (quick CPU runs).
        seed: seed of the subset and of the augmentation.
        batch_size, device, progress: see :func:`~csagan.metrics.fid.extract_features`.
    """

    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    transform: Literal["eval", "train"] = "eval" if passes == 1 else "train"
    dataset = TextImageDataset(Path(data_dir), split, image_size=image_size, transform=transform, seed=seed)
    items = [(int(i), p) for p in range(passes) for i in sample_items(len(dataset), max_images, seed)]
    features = extract_features(iter_split_images(dataset, items, batch_size), model, batch_size, device, progress)
    return ReferenceStats.from_features(features)


def folder_statistics(
    folder: str | os.PathLike[str],
    model: nn.Module,
    *,
    image_size: int | None = None,
    batch_size: int = 50,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> ReferenceStats:
    """Reference statistics (Eq. 27's μ, Σ) of the images in ``folder`` (:func:`list_images`)."""
    files = list_images(folder)
    batches = iter_folder_images(files, batch_size, image_size)
    return ReferenceStats.from_features(extract_features(batches, model, batch_size, device, progress))
