"""Image → caption retrieval with DAMSM encoders on dataset items (top-1 accuracy and R-precision).

What DAMSM pretraining reports per epoch (:mod:`csagan.pretrain`) and the book's DAMSM chapter measures:
encode dataset items with a pair of encoders, score every image against every caption with the
sentence-level or word-level R(Q, D) of Eqs. (5)-(8), and count how often the true caption wins.
The R-precision rounds are :mod:`csagan.metrics.rprecision`'s (the same code as ``csagan evaluate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from csagan.damsm import sentence_similarity_matrix, word_similarity_matrix
from csagan.damsm_io import LoadedDAMSM
from csagan.data.datasets import collate
from csagan.devices import module_device as _module_device
from csagan.metrics.rprecision import r_precision_from_codes, r_precision_from_scores

__all__ = ["encode_items", "retrieval_accuracy", "similarity_matrix"]

def _encoders_of(loaded_or_modules: LoadedDAMSM | tuple[nn.Module, nn.Module]) -> tuple[nn.Module, nn.Module]:
    if isinstance(loaded_or_modules, LoadedDAMSM):
        return loaded_or_modules.text_encoder, loaded_or_modules.image_encoder
    if isinstance(loaded_or_modules, (tuple, list)) and len(loaded_or_modules) == 2:
        return loaded_or_modules[0], loaded_or_modules[1]
    raise ValueError(
        "retrieval_accuracy needs a LoadedDAMSM or a (text_encoder, image_encoder) pair, got "
        f"{type(loaded_or_modules).__name__}."
    )




@torch.no_grad()
def encode_items(
    text_encoder: nn.Module,
    image_encoder: nn.Module,
    dataset: Any,
    indices: Sequence[int],
    batch_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encode ``dataset[i]`` for ``i`` in ``indices`` (one caption per item, as the dataset picks it).

    Returns ``(regions [N, D, h, w], img_code [N, D], words [N, D, T], sent [N, D], cap_lens [N])``
    on the CPU. The encoders' train/eval modes are left as they are (callers pass eval-mode
    encoders).
    """
    device = _module_device(image_encoder)
    text_device = _module_device(text_encoder)
    out: list[list[torch.Tensor]] = [[], [], [], [], []]
    for start in range(0, len(indices), batch_size):
        batch = collate([dataset[int(i)] for i in indices[start : start + batch_size]])
        regions, code = image_encoder(batch.images.to(device))
        words, sent = text_encoder(batch.captions.to(text_device), batch.cap_lens.to(text_device))
        for store, tensor in zip(out, (regions, code, words, sent, batch.cap_lens), strict=True):
            store.append(tensor.float().cpu())
    return tuple(torch.cat(parts) for parts in out)  # type: ignore[return-value]


def similarity_matrix(
    regions: torch.Tensor,
    img_code: torch.Tensor,
    words: torch.Tensor,
    sent: torch.Tensor,
    cap_lens: torch.Tensor,
    score: str = "sentence",
    gamma1: float = 4.0,
    gamma2: float = 5.0,
    chunk: int = 32,
) -> torch.Tensor:
    """Image-by-caption scores [N_images, N_captions] used for retrieval.

    ``score="sentence"``: cos(v̄_j, ē_i), the sentence-level R(Q, D) (what AttnGAN/DF-GAN's
    R-precision uses). ``score="word"``: the word-level R(Q, D) of Eq. (8) (attention of
    Eqs. 5-7); it costs N²·T·n·D operations, computed in chunks of ``chunk`` captions.
    """
    if score == "sentence":
        return sentence_similarity_matrix(img_code, sent)
    if score == "word":
        parts = [
            word_similarity_matrix(words[c : c + chunk], regions, cap_lens[c : c + chunk], gamma1, gamma2)
            for c in range(0, words.shape[0], chunk)
        ]
        return torch.cat(parts, dim=1)
    raise ValueError(f"score must be 'sentence' or 'word', got {score!r}.")


def _r_precision(
    score: str, code: torch.Tensor, sent: torch.Tensor, scores: torch.Tensor, n_cand: int, seed: int
) -> float:
    """One round of R-precision (ties count as misses) through :mod:`csagan.metrics.rprecision`."""
    if score == "sentence":
        return r_precision_from_codes(code, sent, n_cand, rounds=1, seed=seed, ties="miss").mean
    return r_precision_from_scores(scores, n_cand, rounds=1, seed=seed, ties="miss").mean


def retrieval_accuracy(
    loaded_or_modules: LoadedDAMSM | tuple[nn.Module, nn.Module],
    dataset: Any,
    n_candidates: int = 100,
    n_queries: int | None = 1000,
    seed: int = 0,
    *,
    score: str = "sentence",
    batch_size: int = 64,
    gamma1: float = 4.0,
    gamma2: float = 5.0,
) -> dict[str, float]:
    """Image → caption retrieval with DAMSM encoders, on ``n_queries`` items of ``dataset``.

    Each query image is paired with the caption the dataset gives for it (``dataset[i]``; use
    an eval-transform dataset). Two accuracies:

    * ``top1``: the true caption has the highest score among the captions of all queries;
    * ``r_precision``: AttnGAN's R-precision with R = 1 — the true caption ranks first among
      ``n_candidates`` captions (itself and ``n_candidates - 1`` captions of other query items
      drawn at random). With fewer queries than ``n_candidates``, all other queries are the
      candidates (reported as ``n_candidates``).

    A query counts as a hit only when its true caption scores strictly higher than every
    competitor (ties count as misses). ``chance_top1`` and ``chance_r_precision`` are the
    accuracies of random scores (1 / number of competitors + 1). The encoders are used as they
    are (call ``.eval()`` first); queries and candidates are drawn with generators seeded by
    ``seed``. The R-precision is one round of
    :func:`csagan.metrics.rprecision.r_precision_from_codes` (sentence score) or
    :func:`~csagan.metrics.rprecision.r_precision_from_scores` (word score) with ``ties="miss"``.

    Returns:
        ``{"top1", "r_precision", "chance_top1", "chance_r_precision", "n_queries",
        "n_candidates"}``.
    """
    text_encoder, image_encoder = _encoders_of(loaded_or_modules)
    n_items = len(dataset)
    if n_items < 2:
        raise ValueError(f"retrieval needs at least 2 items in the dataset, got {n_items}.")
    if n_candidates < 2:
        raise ValueError(f"n_candidates must be >= 2 (the true caption and a competitor), got {n_candidates}.")
    n = n_items if n_queries is None else min(int(n_queries), n_items)
    if n < 2:
        raise ValueError(f"n_queries must be >= 2, got {n_queries}.")
    gen = torch.Generator().manual_seed(int(seed))
    indices = torch.randperm(n_items, generator=gen)[:n].sort().values.tolist()
    regions, code, words, sent, lens = encode_items(text_encoder, image_encoder, dataset, indices, batch_size)
    scores = similarity_matrix(regions, code, words, sent, lens, score, gamma1, gamma2)  # [N, N]
    true = scores.diagonal()
    others = scores.clone()
    others.fill_diagonal_(float("-inf"))
    top1 = (true > others.max(dim=1).values).float().mean()
    n_cand = min(int(n_candidates), n)
    rprec = _r_precision(score, code, sent, scores, n_cand, seed)
    return {
        "top1": float(top1),
        "r_precision": rprec,
        "chance_top1": 1.0 / n,
        "chance_r_precision": 1.0 / n_cand,
        "n_queries": float(n),
        "n_candidates": float(n_cand),
    }


