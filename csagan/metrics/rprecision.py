"""R-precision with DAMSM encoders (AttnGAN / DM-GAN's text-image retrieval score).

For each generated image, its true caption is ranked among ``n_candidates`` captions (itself
plus ``n_candidates - 1`` captions of other images, drawn at random) by the sentence-level
DAMSM score R(Q, D) = cos(v̄, ē) (as :func:`csagan.damsm.sentence_similarity_matrix`) between
the global image code v̄ and the sentence code ē (Section 2.2; the scores Eq. (9) turns into a
posterior). R-precision (R = 1) is the share of images whose true caption ranks first; it is
computed ``rounds`` times with fresh candidates and reported as mean ± std (population std)
over the rounds.

Ties: a true caption tied with ``k`` competitors at the top earns ``1 / (k + 1)``, the
expected hit of breaking the tie at random (identical captions have identical codes);
``ties="miss"`` counts such a tie as a miss instead.

The core, :func:`r_precision_from_codes`, works on precomputed codes, and
:func:`r_precision_from_scores` on a precomputed score matrix (e.g. word-level scores); both
share one candidate-drawing loop, which ``csagan.metrics.retrieval.retrieval_accuracy`` also uses (with
``ties="miss"``: there a tie counts as a miss).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from csagan.devices import module_device as _module_device
from csagan.metrics.fid import iter_image_batches

__all__ = ["RPrecisionResult", "encode_pairs", "r_precision", "r_precision_from_codes", "r_precision_from_scores"]


@dataclass(frozen=True)
class RPrecisionResult:
    """R-precision over several rounds of candidate draws."""

    mean: float
    std: float
    per_round: tuple[float, ...]
    n_images: int
    n_candidates: int
    seed: int

    @property
    def chance(self) -> float:
        """Expected R-precision of uninformative codes: ``1 / n_candidates``."""
        return 1.0 / self.n_candidates

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (with ``chance``)."""
        out = asdict(self)
        out["per_round"] = list(self.per_round)
        out["chance"] = self.chance
        return out

    def format(self) -> str:
        """One line."""
        return (
            f"R-precision {self.mean:.4f} ± {self.std:.4f} over {len(self.per_round)} rounds "
            f"({self.n_images} images, 1 true + {self.n_candidates - 1} random captions; chance {self.chance:.4f})"
        )


def _draw_competitors(n: int, k: int, rows: Tensor, gen: torch.Generator) -> Tensor:
    """For each query in ``rows``, ``k`` distinct indices from ``0..n-1`` other than itself."""
    keys = torch.rand(len(rows), n - 1, generator=gen)
    pick = keys.topk(k, dim=1).indices  # uniform k-subset of 0..n-2
    return pick + (pick >= rows.unsqueeze(1)).long()  # skip the query's own index


TieRule = Literal["fractional", "miss"]
ScoreFn = Callable[[Tensor, Tensor], Tensor]


def _check_draw(n: int, n_candidates: int, rounds: int, ties: str) -> None:
    if n_candidates < 2:
        raise ValueError(f"n_candidates={n_candidates}: need the true caption and at least one competitor")
    if n_candidates > n:
        raise ValueError(
            f"n_candidates={n_candidates} but only {n} images/captions were given: R-precision draws the "
            f"competitors from the other images' captions, so give at least {n_candidates} images (or lower "
            "n_candidates; results at different n_candidates are not comparable)"
        )
    if rounds < 1:
        raise ValueError(f"rounds={rounds}: need at least one round")
    if ties not in ("fractional", "miss"):
        raise ValueError(f"ties must be 'fractional' or 'miss', got {ties!r}")


def _hits(all_scores: Tensor, ties: str) -> float:
    """Hits of score rows ``[true, competitor_1, ...]`` under the tie rule (module docstring)."""
    t, scores = all_scores[:, :1], all_scores[:, 1:]
    beaten = (scores > t).any(dim=1)
    tied = (scores == t).sum(dim=1).float()
    credit = 1.0 / (1.0 + tied) if ties == "fractional" else (tied == 0).float()
    return float(torch.where(beaten, torch.zeros_like(credit), credit).sum())


def _r_precision_rounds(
    score_rows: ScoreFn, n: int, n_candidates: int, rounds: int, seed: int, ties: str, max_elements: int
) -> RPrecisionResult:
    """The shared loop: ``score_rows(rows [r], cand [r, 1 + k]) -> [r, 1 + k]`` scores of image
    ``rows[i]`` against captions ``cand[i]`` (the true caption first)."""
    _check_draw(n, n_candidates, rounds, ties)
    gen = torch.Generator().manual_seed(int(seed))
    k = n_candidates - 1
    chunk = max(1, min(n, max_elements // max(1, n - 1)))
    per_round: list[float] = []
    for _ in range(rounds):
        hits = 0.0
        for start in range(0, n, chunk):
            rows = torch.arange(start, min(n, start + chunk))
            cand = torch.cat([rows.unsqueeze(1), _draw_competitors(n, k, rows, gen)], dim=1)  # [r, 1 + k]
            hits += _hits(score_rows(rows, cand), ties)
        per_round.append(hits / n)
    return RPrecisionResult(
        mean=float(np.mean(per_round)),
        std=float(np.std(per_round)),
        per_round=tuple(per_round),
        n_images=n,
        n_candidates=n_candidates,
        seed=int(seed),
    )


def r_precision_from_codes(
    image_codes: Tensor,
    sentence_codes: Tensor,
    n_candidates: int = 100,
    rounds: int = 10,
    seed: int = 0,
    max_elements: int = 1 << 22,
    *,
    ties: TieRule = "fractional",
) -> RPrecisionResult:
    """R-precision of matched rows ``image_codes[i]`` ↔ ``sentence_codes[i]`` (cosine scores).

    Args:
        image_codes: [N, D] global image codes v̄.
        sentence_codes: [N, D] sentence codes ē of each image's true caption.
        n_candidates: captions ranked per image (1 true + ``n_candidates - 1`` random others).
        rounds: independent candidate draws (mean ± std over them).
        seed: seed of a private ``torch.Generator`` (the global RNG is not used).
        max_elements: memory bound of one chunk of random keys (rows x N).
        ties: ``"fractional"`` (a tie with ``k`` competitors earns ``1 / (k + 1)``) or
            ``"miss"`` (only a strictly highest true caption counts).

    Raises:
        ValueError: mismatched shapes, ``n_candidates`` < 2 or > N, or ``rounds`` < 1.
    """
    if image_codes.ndim != 2 or image_codes.shape != sentence_codes.shape:
        raise ValueError(
            f"image_codes and sentence_codes must both be [N, D] with the same shape, got "
            f"{tuple(image_codes.shape)} and {tuple(sentence_codes.shape)}"
        )
    img = image_codes.detach().float().cpu()
    sent = sentence_codes.detach().float().cpu()
    img_n = img / img.norm(dim=1, keepdim=True).clamp(min=1e-8)
    sent_n = sent / sent.norm(dim=1, keepdim=True).clamp(min=1e-8)

    def cosine(rows: Tensor, cand: Tensor) -> Tensor:
        # One kernel for true and competing scores, so identical codes give identical scores.
        return torch.einsum("rd,rkd->rk", img_n[rows], sent_n[cand])

    return _r_precision_rounds(cosine, int(img.shape[0]), n_candidates, rounds, seed, ties, max_elements)


def r_precision_from_scores(
    scores: Tensor,
    n_candidates: int = 100,
    rounds: int = 10,
    seed: int = 0,
    *,
    ties: TieRule = "fractional",
) -> RPrecisionResult:
    """R-precision from a precomputed [N, N] score matrix (``scores[i, j]``: image i vs caption j).

    For scores that are not cosines of codes, e.g. DAMSM's word-level R(Q, D) of Eq. (8). The
    candidate draws and tie rule are those of :func:`r_precision_from_codes`.
    """
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"scores must be a square [N, N] matrix, got {tuple(scores.shape)}")
    mat = scores.detach().float().cpu()

    def gather(rows: Tensor, cand: Tensor) -> Tensor:
        return mat[rows.unsqueeze(1), cand]

    n = int(mat.shape[0])
    return _r_precision_rounds(gather, n, n_candidates, rounds, seed, ties, 1 << 22)


@torch.no_grad()
def encode_pairs(
    image_encoder: nn.Module,
    text_encoder: nn.Module,
    images: Tensor | Iterable[Tensor],
    captions: Tensor,
    cap_lens: Tensor,
    batch_size: int = 64,
) -> tuple[Tensor, Tensor]:
    """Global image codes and sentence codes (CPU, fp32) of matched images and captions.

    ``image_encoder(images) -> (regions, code)`` and ``text_encoder(captions, cap_lens) ->
    (words, sentence)`` as in :mod:`csagan.damsm` / :mod:`csagan.text`. Both run in eval mode
    (their modes are restored afterwards) on the device of their parameters.
    """

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if captions.ndim != 2 or cap_lens.ndim != 1 or captions.shape[0] != cap_lens.shape[0]:
        raise ValueError(
            f"captions must be [N, T] and cap_lens [N], got {tuple(captions.shape)} and {tuple(cap_lens.shape)}"
        )
    img_dev, txt_dev = _module_device(image_encoder), _module_device(text_encoder)
    modes = (image_encoder.training, text_encoder.training)
    image_encoder.eval()
    text_encoder.eval()
    try:
        codes = [image_encoder(b.to(img_dev))[1].float().cpu() for b in iter_image_batches(images, batch_size)]
        sents = [
            text_encoder(captions[s : s + batch_size].to(txt_dev), cap_lens[s : s + batch_size].to(txt_dev))[1]
            .float()
            .cpu()
            for s in range(0, captions.shape[0], batch_size)
        ]
    finally:
        image_encoder.train(modes[0])
        text_encoder.train(modes[1])
    if not codes or not sents:
        raise ValueError("no images or no captions were given")
    img_codes, sent_codes = torch.cat(codes), torch.cat(sents)
    if img_codes.shape[0] != sent_codes.shape[0]:
        raise ValueError(
            f"{img_codes.shape[0]} images but {sent_codes.shape[0]} captions: give one (true) caption per image"
        )
    return img_codes, sent_codes


def r_precision(
    image_encoder: nn.Module,
    text_encoder: nn.Module,
    images: Tensor | Iterable[Tensor],
    captions: Tensor,
    cap_lens: Tensor,
    n_candidates: int = 100,
    rounds: int = 10,
    seed: int = 0,
    batch_size: int = 64,
) -> RPrecisionResult:
    """R-precision of ``images`` against their captions with DAMSM encoders (module docstring).

    Args:
        image_encoder: DAMSM image encoder, ``images -> (regions, global code)``.
        text_encoder: DAMSM text encoder, ``(captions, cap_lens) -> (words, sentence code)``.
        images: [N, 3, H, W] in [-1, 1] (or an iterable of batches), image ``i`` generated
            from caption ``i``.
        captions: [N, T] word indices (0-padded); ``cap_lens``: [N] lengths.
        n_candidates, rounds, seed: see :func:`r_precision_from_codes`.
        batch_size: encoder batch size.
    """
    img_codes, sent_codes = encode_pairs(image_encoder, text_encoder, images, captions, cap_lens, batch_size)
    return r_precision_from_codes(img_codes, sent_codes, n_candidates, rounds, seed)
