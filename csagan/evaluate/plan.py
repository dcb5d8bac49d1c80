"""Which images an evaluation generates: the protocol's (test image, caption) pairs, the generated
images and the real reference images (module docstring of :mod:`csagan.evaluate`)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from csagan.damsm_io import vocab_to_list
from csagan.data.datasets import TextImageDataset
from csagan.metrics.reference import iter_split_images, quantize_images, sample_items
from csagan.sample import DEFAULT_TRUNCATION, sample_images

__all__ = ["CaptionPlan", "caption_plan", "check_counts", "float_batches", "generate_images", "real_images",
           "test_split"]


@dataclass(frozen=True)
class CaptionPlan:
    """Which test image and caption each generated image comes from (row ``j`` = image ``j``)."""

    items: np.ndarray  # [M] index of the test image
    captions: np.ndarray  # [M] index of its caption, 0..N-1
    passes: np.ndarray  # [M] pass over the test split
    n_passes: int

    def __len__(self) -> int:
        return int(self.items.shape[0])


def caption_plan(
    n_items: int, captions_per_image: int, passes: int = 1, seed: int = 0, max_images: int | None = None
) -> CaptionPlan:
    """The evaluation protocol's (image, caption) pairs (module docstring).

    ``passes × n_items`` pairs, pass by pass; with ``max_images`` a seeded random subset of that
    many pairs (kept in pass order).

    Raises:
        ValueError: ``passes`` < 1, ``max_images`` < 2, or an empty split.
    """
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    if n_items < 1 or captions_per_image < 1:
        raise ValueError(f"the test split has {n_items} images with {captions_per_image} captions each")
    if max_images is not None and max_images < 2:
        raise ValueError(f"max_images={max_images}: the metrics need at least 2 images")
    items = np.tile(np.arange(n_items), passes)
    pass_of = np.repeat(np.arange(passes), n_items)
    caps = np.concatenate(
        [np.random.default_rng([seed, p]).integers(0, captions_per_image, size=n_items) for p in range(passes)]
    )
    if max_images is not None and max_images < len(items):
        keep = np.sort(np.random.default_rng([seed, passes, max_images]).choice(len(items), max_images, replace=False))
        items, pass_of, caps = items[keep], pass_of[keep], caps[keep]
    return CaptionPlan(items=items, captions=caps, passes=pass_of, n_passes=passes)


def check_counts(chosen: Sequence[str], n: int, is_splits: int, rprec_candidates: int) -> None:
    """Fail before generating when the plan is too small for a requested metric."""
    if {"is", "dis"} & set(chosen) and not 1 <= is_splits <= n:
        raise ValueError(
            f"IS over {is_splits} splits needs at least {is_splits} generated images, the plan has {n}; "
            "generate more (--passes / --max-images) or lower --is-splits"
        )
    if "rprec" in chosen and not 2 <= rprec_candidates <= n:
        raise ValueError(
            f"R-precision among {rprec_candidates} captions needs at least {rprec_candidates} generated images, "
            f"the plan has {n}; generate more or lower --rprec-candidates (2 at least)"
        )


def test_split(data_dir: str | os.PathLike[str], run: Any, seed: int) -> Any:
    """The test split at the generator's size (``eval`` transform), checked against the run's vocabulary."""

    dataset = TextImageDataset(
        Path(data_dir), "test", image_size=run.model_config.image_size, transform="eval", seed=seed
    )
    if vocab_to_list(dataset.vocab) != list(run.vocab):
        raise ValueError(
            f"the dataset at {data_dir} has a vocabulary of {dataset.n_words} words that differs from the run's "
            f"({len(run.vocab)} words): evaluate a run on the dataset it was trained on"
        )
    return dataset


def _chunk_seed(seed: int, chunk: int) -> int:
    return int(np.random.SeedSequence([seed, chunk]).generate_state(1, dtype=np.uint64)[0] & 0x7FFF_FFFF_FFFF_FFFF)


def generate_images(
    run: Any,
    captions: Sequence[str],
    *,
    seed: int = 0,
    truncation: float | None = DEFAULT_TRUNCATION,
    batch_size: int = 50,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> Tensor:
    """One image per caption with :func:`csagan.sample.sample_images`, as ``uint8`` [M, 3, S, S].

    Chunk ``c`` of ``batch_size`` captions draws its noise from a generator seeded by
    ``(seed, c)``, so the images depend on ``seed`` and ``batch_size`` only.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    parts: list[Tensor] = []
    with tqdm(total=len(captions), desc="generate", unit="img", disable=not progress) as bar:
        for c, start in enumerate(range(0, len(captions), batch_size)):
            texts = list(captions[start : start + batch_size])
            result = sample_images(
                run.generator, run.text_encoder, run.vocab, texts, n_per_caption=1, truncation=truncation,
                seed=_chunk_seed(seed, c), device=device, batch_size=batch_size,
            )  # fmt: skip
            parts.append(quantize_images(result.images))
            bar.update(len(texts))
    if not parts:
        raise ValueError("no captions to generate from")
    return torch.cat(parts)


def real_images(dataset: Any, max_images: int | None, seed: int, batch_size: int) -> Tensor:
    """The test images (or a seeded subset of ``max_images``) as ``uint8``, eval transform."""

    items = [(int(i), 0) for i in sample_items(len(dataset), max_images, seed)]
    return torch.cat(list(iter_split_images(dataset, items, batch_size)))


def float_batches(images: Tensor, batch_size: int) -> Iterator[Tensor]:
    """``uint8`` images → [−1, 1] float batches (for the DAMSM image encoder)."""
    for batch in torch.split(images, batch_size):
        yield batch.float().div(127.5).sub(1.0)
