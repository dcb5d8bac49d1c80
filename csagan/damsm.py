"""DAMSM: deep attentional multimodal similarity model (paper Section 2.2, Eqs. 4-12).

The DAMSM scores how well an image matches a caption at two levels and turns the scores into
matching losses over a batch:

* word level: each word attends to the image's region features (Eqs. 5-7), the relevance of
  word and region context is their cosine, and the word scores are pooled into one image-text
  score R(Q, D) (Eq. 8);
* sentence level: R(Q, D) is the cosine of the global image code and the sentence code.

Both scores feed a softmax over the batch (Eq. 9, scaled by γ3) and cross-entropies in both
directions (Eqs. 10-11); L_DAMSM is their sum (Eq. 12). Q is the image (query) and D the
description, as in AttnGAN: ``L1 = -log P(D_i | Q_i)`` picks the right caption for each image,
``L2 = -log P(Q_i | D_i)`` the right image for each caption.

Differences from the printed equations, and what this module implements:

* Eq. (8) is printed with a ``1/γ2`` power (so that it tends to ``max_i R(c_i, e_i)``);
  AttnGAN's code has no such factor. ``DAMSMConfig.word_score_mode`` selects ``"code"``
  (default, AttnGAN: ``log Σ_i exp(γ2 R_i)``) or ``"paper"`` (``(1/γ2) log Σ_i exp(γ2 R_i)``).
  The sum runs over the caption's ``cap_len`` real words only (padding is excluded from Eq. 6's
  softmax over words as well), i.e. over all T words, 0-based as in (6)-(7); the printed
  ``i = 1 … T-1`` in (8) would drop the first word, which AttnGAN does not.
* Eq. (9)'s printed denominator repeats ``R(Q_i, D_i)``; it must run over the batch's ``D_j``.
* Eqs. (10)-(11) sum over the batch; AttnGAN (and so DF-GAN / SSA-GAN's λ3 = 0.05) averages.
  ``reduction="mean"`` (default) follows the code, ``"sum"`` the printed formula.
* With class ids, off-diagonal pairs of the same class are not treated as negatives: their
  logits are set to -inf before the softmax (never the diagonal), as AttnGAN does.

The image encoders (Eq. 4) are in :mod:`csagan.damsm_encoders`; :class:`DAMSM` joins one of
them, the text encoder and the losses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from csagan.text import RNNEncoder, check_captions

__all__ = [
    "DAMSM",
    "DAMSMConfig",
    "DAMSMLosses",
    "class_mask",
    "cosine_similarity",
    "damsm_loss",
    "func_attention",
    "matching_losses",
    "pairwise_attention",
    "posterior",
    "sentence_loss",
    "sentence_similarity_matrix",
    "word_level_score",
    "word_loss",
    "word_similarity_matrix",
]

WordScoreMode = Literal["code", "paper"]
Reduction = Literal["mean", "sum"]
ClassIds = Tensor | Sequence[int]


@dataclass(frozen=True)
class DAMSMConfig:
    """Smoothing factors and reduction of the DAMSM losses (Eqs. 7-11).

    Attributes:
        gamma1: sharpness of the attention over regions, Eq. (7). 4 for DAMSM pretraining
            (AttnGAN), 5 in SSA-GAN's GAN config.
        gamma2: sharpness of the word-score pooling, Eq. (8). 5.
        gamma3: smoothing of the batch posterior, Eq. (9). 10.
        word_score_mode: ``"code"`` (AttnGAN, ``log Σ exp(γ2 R)``) or ``"paper"`` (with 1/γ2).
        reduction: ``"mean"`` over the batch (AttnGAN) or ``"sum"`` (Eqs. 10-11 as printed).
        eps: lower bound of the norm product in the cosines.
    """

    gamma1: float = 4.0
    gamma2: float = 5.0
    gamma3: float = 10.0
    word_score_mode: WordScoreMode = "code"
    reduction: Reduction = "mean"
    eps: float = 1e-8

    def __post_init__(self) -> None:
        for name in ("gamma1", "gamma2", "gamma3", "eps"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"DAMSMConfig.{name} must be > 0, got {value}.")
        _check_mode(self.word_score_mode)
        _check_reduction(self.reduction)


class DAMSMLosses(NamedTuple):
    """The four DAMSM losses; ``total`` is L_DAMSM, Eq. (12).

    ``w1``/``w2``: word-level L^w_1 (image → caption) and L^w_2 (caption → image), Eqs. (10)-(11);
    ``s1``/``s2``: the sentence-level versions.
    """

    w1: Tensor
    w2: Tensor
    s1: Tensor
    s2: Tensor

    @property
    def word(self) -> Tensor:
        """L^w_1 + L^w_2."""
        return self.w1 + self.w2

    @property
    def sentence(self) -> Tensor:
        """L^s_1 + L^s_2."""
        return self.s1 + self.s2

    @property
    def total(self) -> Tensor:
        """L_DAMSM = L^w_1 + L^w_2 + L^s_1 + L^s_2, Eq. (12)."""
        return self.w1 + self.w2 + self.s1 + self.s2


def _check_mode(mode: str) -> None:
    if mode not in ("code", "paper"):
        raise ValueError(
            f"word_score_mode must be 'code' (AttnGAN: log Σ exp(γ2 R)) or 'paper' "
            f"(Eq. 8 with the 1/γ2 power), got {mode!r}."
        )


def _check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "sum"):
        raise ValueError(
            f"reduction must be 'mean' (AttnGAN) or 'sum' (Eqs. 10-11 as printed), got {reduction!r}."
        )


def _flatten_regions(regions: Tensor) -> Tensor:
    """[B, D, H, W] or [B, D, n] → [B, D, n]."""
    if regions.dim() == 4:
        return regions.flatten(2)
    if regions.dim() == 3:
        return regions
    raise ValueError(
        f"regions must have shape [B, D, H, W] or [B, D, n], got {tuple(regions.shape)}."
    )


def _word_mask(cap_lens: Tensor, t_max: int) -> Tensor:
    """Bool [B, T]: True for the first ``cap_lens[b]`` words of caption b."""
    if cap_lens.dim() != 1:
        raise ValueError(f"cap_lens must have shape [B], got {tuple(cap_lens.shape)}.")
    if bool((cap_lens < 1).any()) or bool((cap_lens > t_max).any()):
        raise ValueError(
            f"cap_lens must lie in 1..{t_max} (the number of word features), got "
            f"min {int(cap_lens.min())}, max {int(cap_lens.max())}."
        )
    steps = torch.arange(t_max, device=cap_lens.device)
    return steps.unsqueeze(0) < cap_lens.unsqueeze(1)


def _attention_weights(scores: Tensor, gamma1: float, word_mask: Tensor | None) -> Tensor:
    """Eqs. (6)-(7) on raw scores ``s`` [..., T, n]: softmax over words, ×γ1, softmax over regions."""
    if word_mask is not None:
        scores = scores.masked_fill(~word_mask.unsqueeze(-1), float("-inf"))
    s_bar = torch.softmax(scores, dim=-2)  # (6): over words k, per region j
    return torch.softmax(gamma1 * s_bar, dim=-1)  # (7): over regions


def func_attention(
    words: Tensor, regions: Tensor, gamma1: float, word_mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Region context of every word for matched pairs, Eqs. (5)-(7).

    Args:
        words: word features e, [B, D, T].
        regions: region features v, [B, D, H, W] or [B, D, n].
        gamma1: γ1 of Eq. (7).
        word_mask: optional bool [B, T]; False words (padding) are left out of Eq. (6)'s softmax
            over words (their own contexts are then a uniform average of regions; ignore them).

    Returns:
        ``(context [B, D, T], attn [B, T, n])`` with ``context[:, :, i] = Σ_j α_{ij} v_j`` and
        ``attn[:, i, :] = α_i`` (rows sum to 1).
    """
    v = _flatten_regions(regions)
    if words.dim() != 3 or words.shape[:2] != v.shape[:2]:
        raise ValueError(
            f"words must have shape [B, D, T] with the same B and D as regions "
            f"{tuple(v.shape)}, got {tuple(words.shape)}."
        )
    scores = torch.bmm(words.transpose(1, 2), v)  # (5): s = eᵀ v, [B, T, n]
    attn = _attention_weights(scores, gamma1, word_mask)
    context = torch.bmm(v, attn.transpose(1, 2))  # c_i = Σ_j α_ij v_j, [B, D, T]
    return context, attn


def _check_pair(words: Tensor, regions: Tensor) -> Tensor:
    """Check words [Bc, D, T] against regions [Bi, D, ...]; return the regions as [Bi, D, n]."""
    v = _flatten_regions(regions)
    if words.dim() != 3 or words.shape[1] != v.shape[1]:
        raise ValueError(
            f"words must have shape [Bc, D, T] with D = {v.shape[1]} (the regions' D), "
            f"got {tuple(words.shape)}."
        )
    return v


def pairwise_attention(
    words: Tensor, regions: Tensor, gamma1: float, word_mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Eqs. (5)-(7) for every (caption, image) pair of a batch.

    Args:
        words: [Bc, D, T] word features of Bc captions.
        regions: [Bi, D, H, W] or [Bi, D, n] region features of Bi images.
        gamma1: γ1 of Eq. (7).
        word_mask: optional bool [Bc, T] of real words.

    Returns:
        ``(context [Bc, Bi, D, T], attn [Bc, Bi, T, n])``.
    """
    v = _check_pair(words, regions)
    scores = torch.einsum("cdt,jdn->cjtn", words, v)
    mask = None if word_mask is None else word_mask.unsqueeze(1)
    attn = _attention_weights(scores, gamma1, mask)
    context = torch.einsum("cjtn,jdn->cjdt", attn, v)
    return context, attn


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``x1ᵀx2 / max(‖x1‖‖x2‖, eps)`` along ``dim`` (the relevance R of Eq. 7 and the sentence score)."""
    dot = (x1 * x2).sum(dim)
    norms = x1.norm(dim=dim) * x2.norm(dim=dim)
    return dot / norms.clamp(min=eps)


def word_level_score(
    relevance: Tensor, word_mask: Tensor, gamma2: float, mode: WordScoreMode = "code"
) -> Tensor:
    """Pool word relevances R(c_i, e_i) [..., T] into one score R(Q, D) [...], Eq. (8).

    ``"code"``: ``log Σ_i exp(γ2 R_i)`` (AttnGAN); ``"paper"``: ``(1/γ2) log Σ_i exp(γ2 R_i)``,
    which tends to ``max_i R_i`` as γ2 → ∞. Only words with ``word_mask`` True count. Computed
    with ``logsumexp`` (same value as log-sum-exp written out, without overflow).
    """
    _check_mode(mode)
    pooled = torch.logsumexp((gamma2 * relevance).masked_fill(~word_mask, float("-inf")), dim=-1)
    return pooled / gamma2 if mode == "paper" else pooled


def word_similarity_matrix(
    words: Tensor,
    regions: Tensor,
    cap_lens: Tensor,
    gamma1: float,
    gamma2: float,
    mode: WordScoreMode = "code",
    eps: float = 1e-8,
) -> Tensor:
    """Word-level R(Q_j, D_i) for every image j and caption i, Eqs. (5)-(8).

    Args:
        words: [B, D, T] word features; only the first ``cap_lens[i]`` words of caption i count.
        regions: [B, D, H, W] or [B, D, n] region features.
        cap_lens: [B] caption lengths.

    Returns:
        [B_images, B_captions] scores.

    All B² pairs are attended at once; memory grows as B²·T·n (about 50 MB in float32 for
    B = 48, T = 18, n = 289).

    The relevance R(c_t, e_t) = cos(c_t, e_t) of Eq. (7), with the context c_t = Σ_r α_tr v_r, is
    computed without forming the B²·D·T contexts: c_tᵀe_t = Σ_r α_tr s_tr (s of Eq. 5) and
    ‖c_t‖² = α_tᵀ (VᵀV) α_t. This equals :func:`pairwise_attention` followed by
    :func:`cosine_similarity` (tested) and costs B²·T·n² instead of B²·T·n·D multiply-adds with a
    smaller backward (the largest single cost of a 64 px CSA-GAN step before; benchmarks/README.md).
    """
    mask = _word_mask(cap_lens.to(words.device), words.shape[2])
    v = _check_pair(words, regions)
    scores = torch.einsum("cdt,jdn->cjtn", words, v)  # (5) for every pair, [Bc, Bi, T, n]
    attn = _attention_weights(scores, gamma1, mask.unsqueeze(1))  # (6)-(7)
    dot = (attn * scores).sum(-1)  # c_tᵀ e_t, [Bc, Bi, T]
    gram = torch.bmm(v.transpose(1, 2), v)  # VᵀV per image, [Bi, n, n]
    ctx_sq = (torch.einsum("cjtn,jnm->cjtm", attn, gram) * attn).sum(-1)  # ‖c_t‖²
    ctx_norm = ctx_sq.clamp(min=eps * eps).sqrt()  # rounding can make a ~0 square negative
    relevance = dot / (ctx_norm * words.norm(dim=1).unsqueeze(1)).clamp(min=eps)  # [Bc, Bi, T]
    scores = word_level_score(relevance, mask.unsqueeze(1), gamma2, mode)  # [Bc, Bi]
    return scores.transpose(0, 1)


def sentence_similarity_matrix(img_code: Tensor, sent_emb: Tensor, eps: float = 1e-8) -> Tensor:
    """Sentence-level R(Q_j, D_i) = cos(v̄_j, ē_i) for every image j and caption i: [Bi, Bc]."""
    if img_code.dim() != 2 or sent_emb.dim() != 2 or img_code.shape[1] != sent_emb.shape[1]:
        raise ValueError(
            f"img_code and sent_emb must be [B, D] with the same D, got {tuple(img_code.shape)} "
            f"and {tuple(sent_emb.shape)}."
        )
    dots = img_code @ sent_emb.T
    norms = img_code.norm(dim=1, keepdim=True) * sent_emb.norm(dim=1, keepdim=True).T
    return dots / norms.clamp(min=eps)


def class_mask(class_ids: ClassIds, device: torch.device | None = None) -> Tensor:
    """Bool [B, B]: True where pair (j, i) has the same class and j ≠ i (the diagonal is never masked)."""
    ids = torch.as_tensor(class_ids, device=device)
    if ids.dim() != 1:
        raise ValueError(f"class_ids must be one id per sample, shape [B], got {tuple(ids.shape)}.")
    same = ids.unsqueeze(0) == ids.unsqueeze(1)
    return same & ~torch.eye(len(ids), dtype=torch.bool, device=ids.device)


def _masked_logits(scores: Tensor, gamma3: float, class_ids: ClassIds | None) -> Tensor:
    if scores.dim() != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(
            f"scores must be a square [B, B] image-by-caption matrix, got {tuple(scores.shape)}."
        )
    logits = gamma3 * scores
    if class_ids is not None:
        mask = class_mask(class_ids, device=scores.device)
        if mask.shape != scores.shape:
            raise ValueError(
                f"class_ids has {mask.shape[0]} entries but the batch has {scores.shape[0]} pairs."
            )
        logits = logits.masked_fill(mask, float("-inf"))
    return logits


def posterior(scores: Tensor, gamma3: float, class_ids: ClassIds | None = None) -> Tensor:
    """P(D_i | Q_j) = exp(γ3 R(Q_j, D_i)) / Σ_k exp(γ3 R(Q_j, D_k)), Eq. (9) (denominator over D_k).

    ``scores`` is [B_images, B_captions]; row j is a distribution over captions (sums to 1).
    P(Q | D) is ``posterior(scores.T, ...)``.
    """
    return torch.softmax(_masked_logits(scores, gamma3, class_ids), dim=1)


def matching_losses(
    scores: Tensor,
    gamma3: float,
    class_ids: ClassIds | None = None,
    reduction: Reduction = "mean",
) -> tuple[Tensor, Tensor]:
    """Eqs. (10)-(11): ``(L1, L2) = (-Σ_i log P(D_i|Q_i), -Σ_i log P(Q_i|D_i))`` (or the mean).

    ``scores`` is [B_images, B_captions] with matching pairs on the diagonal; same-class
    off-diagonal pairs are removed from both softmaxes when ``class_ids`` is given.
    """
    _check_reduction(reduction)
    logits = _masked_logits(scores, gamma3, class_ids)
    labels = torch.arange(logits.shape[0], device=logits.device)
    loss1 = F.cross_entropy(logits, labels, reduction=reduction)
    loss2 = F.cross_entropy(logits.T, labels, reduction=reduction)
    return loss1, loss2


def word_loss(
    regions: Tensor,
    words: Tensor,
    cap_lens: Tensor,
    class_ids: ClassIds | None = None,
    config: DAMSMConfig | None = None,
) -> tuple[Tensor, Tensor]:
    """Word-level (L^w_1, L^w_2), Eqs. (5)-(11)."""
    cfg = config if config is not None else DAMSMConfig()
    scores = word_similarity_matrix(
        words, regions, cap_lens, cfg.gamma1, cfg.gamma2, cfg.word_score_mode, cfg.eps
    )
    return matching_losses(scores, cfg.gamma3, class_ids, cfg.reduction)


def sentence_loss(
    img_code: Tensor,
    sent_emb: Tensor,
    class_ids: ClassIds | None = None,
    config: DAMSMConfig | None = None,
) -> tuple[Tensor, Tensor]:
    """Sentence-level (L^s_1, L^s_2): Eqs. (9)-(11) with R = cos(v̄, ē)."""
    cfg = config if config is not None else DAMSMConfig()
    scores = sentence_similarity_matrix(img_code, sent_emb, cfg.eps)
    return matching_losses(scores, cfg.gamma3, class_ids, cfg.reduction)


def damsm_loss(
    regions: Tensor,
    img_code: Tensor,
    words_emb: Tensor,
    sent_emb: Tensor,
    cap_lens: Tensor,
    class_ids: ClassIds | None = None,
    config: DAMSMConfig | None = None,
) -> DAMSMLosses:
    """All four DAMSM losses for a batch of matching (image, caption) pairs; ``.total`` is Eq. (12).

    Args:
        regions: [B, D, h, w] (or [B, D, n]) region features v from an image encoder.
        img_code: [B, D] global image code v̄.
        words_emb: [B, D, T] word features e from :class:`~csagan.text.RNNEncoder`.
        sent_emb: [B, D] sentence code ē.
        cap_lens: [B] caption lengths (words past a caption's length are ignored).
        class_ids: optional [B] class ids; same-class off-diagonal pairs are not negatives.
        config: γ1, γ2, γ3, Eq. (8) form and reduction; :class:`DAMSMConfig` defaults if None.

    float16/bfloat16 inputs are cast to float32 and the losses are computed with autocast off,
    so a mixed-precision training step still gets float32 DAMSM losses.
    """
    batch = words_emb.shape[0]
    for name, tensor in (("regions", regions), ("img_code", img_code), ("sent_emb", sent_emb)):
        if tensor.shape[0] != batch:
            raise ValueError(
                f"{name} has batch size {tensor.shape[0]} but words_emb has {batch}; pass matching "
                "pairs (image b with caption b)."
            )
    if cap_lens.shape != (batch,):
        raise ValueError(f"cap_lens must have shape [{batch}], got {tuple(cap_lens.shape)}.")
    # Half-precision features (e.g. from a bf16 autocast region) are scored in float32.
    regions, img_code, words_emb, sent_emb = (
        _at_least_fp32(t) for t in (regions, img_code, words_emb, sent_emb)
    )
    with torch.autocast(device_type=words_emb.device.type, enabled=False):
        w1, w2 = word_loss(regions, words_emb, cap_lens, class_ids, config)
        s1, s2 = sentence_loss(img_code, sent_emb, class_ids, config)
    return DAMSMLosses(w1, w2, s1, s2)


def _at_least_fp32(tensor: Tensor) -> Tensor:
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


class DAMSM(nn.Module):
    """Text encoder + image encoder + :class:`DAMSMConfig`: one call from batch to L_DAMSM (Eq. 12)."""

    def __init__(
        self, text_encoder: RNNEncoder, image_encoder: nn.Module, config: DAMSMConfig | None = None
    ) -> None:
        super().__init__()
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder
        self.config = config if config is not None else DAMSMConfig()

    def encode(
        self, images: Tensor, captions: Tensor, cap_lens: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(regions, img_code, words_emb, sent_emb)`` for a batch of matching pairs."""
        check_captions(captions, cap_lens)
        if images.shape[0] != captions.shape[0]:
            raise ValueError(
                f"images ({images.shape[0]}) and captions ({captions.shape[0]}) must have the same "
                "batch size: DAMSM takes matching (image b, caption b) pairs."
            )
        regions, img_code = self.image_encoder(images)
        words_emb, sent_emb = self.text_encoder(captions, cap_lens)
        return regions, img_code, words_emb, sent_emb

    def forward(
        self,
        images: Tensor,
        captions: Tensor,
        cap_lens: Tensor,
        class_ids: ClassIds | None = None,
    ) -> DAMSMLosses:
        """DAMSM losses of a batch of matching pairs (images in [-1, 1], padded captions)."""
        regions, img_code, words_emb, sent_emb = self.encode(images, captions, cap_lens)
        return damsm_loss(regions, img_code, words_emb, sent_emb, cap_lens, class_ids, self.config)

    @torch.no_grad()
    def attention_maps(self, images: Tensor, captions: Tensor, cap_lens: Tensor) -> Tensor:
        """Word-to-region attention α (Eq. 7) of each image with its own caption: [B, T, h, w].

        Maps of padding words (past ``cap_lens``) are zero. For figures; no gradients.
        """
        regions, _, words_emb, _ = self.encode(images, captions, cap_lens)
        mask = _word_mask(cap_lens.to(words_emb.device), words_emb.shape[2])
        _, attn = func_attention(words_emb, regions, self.config.gamma1, mask)
        attn = attn * mask.unsqueeze(-1).to(attn.dtype)
        return attn.reshape(attn.shape[0], attn.shape[1], *regions.shape[2:])
