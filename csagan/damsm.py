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

Image encoders share one interface, ``forward(images [B,3,S,S] in [-1,1]) -> (regions
[B, D, h, w], global [B, D])``: :class:`InceptionEncoder` (AttnGAN's frozen ImageNet
Inception-v3 with trainable projections W, W̄ of Eq. 4) and :class:`SmallCNNEncoder` (a small,
fully trainable CNN for CPU runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from csagan.text import RNNEncoder, check_captions

__all__ = [
    "DAMSMConfig",
    "DAMSMLosses",
    "func_attention",
    "pairwise_attention",
    "cosine_similarity",
    "word_level_score",
    "word_similarity_matrix",
    "sentence_similarity_matrix",
    "class_mask",
    "posterior",
    "matching_losses",
    "word_loss",
    "sentence_loss",
    "damsm_loss",
    "InceptionEncoder",
    "SmallCNNEncoder",
    "load_attngan_image_encoder",
    "DAMSM",
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


# ----------------------------------------------------------------------------- image encoders


def _check_images(images: Tensor) -> None:
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(
            f"images must have shape [B, 3, S, S] with values in [-1, 1], got {tuple(images.shape)}."
        )


INCEPTION_LAYERS: tuple[str, ...] = (
    "Conv2d_1a_3x3",
    "Conv2d_2a_3x3",
    "Conv2d_2b_3x3",
    "Conv2d_3b_1x1",
    "Conv2d_4a_3x3",
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
)

IMAGENET_INCEPTION_FILE = "inception_v3_google-0cc3c7bd.pth"
IMAGENET_INCEPTION_URL = f"https://download.pytorch.org/models/{IMAGENET_INCEPTION_FILE}"


def _fill_batchnorm_counters(state: dict[str, Tensor], module: nn.Module) -> dict[str, Tensor]:
    """Add ``num_batches_tracked`` entries that files saved by old PyTorch (<0.4.1) lack."""
    state = dict(state)
    for key in module.state_dict():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.tensor(0, dtype=torch.long)
    return state


class InceptionEncoder(nn.Module):
    """AttnGAN's DAMSM image encoder (Eq. 4): frozen Inception-v3 plus trainable W and W̄.

    Local features f are Mixed_6e's output (768×17×17, n = 289 regions), the global feature f̄
    is Mixed_7c's output average-pooled to 2048. ``emb_features`` (1×1 conv, no bias) is W and
    ``emb_cnn_code`` (linear) is W̄; both start uniform in ±0.1 and are the only trainable
    parameters. The Inception layers are attributes under their torchvision names, so the state
    dict has AttnGAN's ``image_encoder200.pth`` layout and loads with ``strict=True``.

    Input: images in [-1, 1], any size, bilinearly resized to 299×299 (``align_corners=False``).
    Like AttnGAN, no ImageNet mean/std normalisation is applied: Google's Inception-v3 weights
    (torchvision's ``inception_v3_google``) were trained on inputs in [-1, 1] — torchvision's
    ``transform_input=True`` exists to map ImageNet-normalised tensors back to that range.
    The frozen backbone always runs in eval mode (BatchNorm uses its running statistics), also
    after ``.train()``; AttnGAN's pretraining script put it in train mode, which we do not copy.
    Gradients flow through the backbone to the images (needed for the generator's L_DAMSM).
    """

    Conv2d_1a_3x3: nn.Module
    Conv2d_2a_3x3: nn.Module
    Conv2d_2b_3x3: nn.Module
    Conv2d_3b_1x1: nn.Module
    Conv2d_4a_3x3: nn.Module
    Mixed_5b: nn.Module
    Mixed_5c: nn.Module
    Mixed_5d: nn.Module
    Mixed_6a: nn.Module
    Mixed_6b: nn.Module
    Mixed_6c: nn.Module
    Mixed_6d: nn.Module
    Mixed_6e: nn.Module
    Mixed_7a: nn.Module
    Mixed_7b: nn.Module
    Mixed_7c: nn.Module

    def __init__(self, emb_dim: int = 256, input_size: int = 299) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        if emb_dim < 1:
            raise ValueError(f"emb_dim must be >= 1, got {emb_dim}.")
        if input_size < 75:
            raise ValueError(f"input_size must be >= 75 (Inception-v3's minimum), got {input_size}.")
        self.emb_dim = emb_dim
        self.input_size = input_size
        net = inception_v3(weights=None, aux_logits=False, init_weights=False)
        for name in INCEPTION_LAYERS:
            setattr(self, name, getattr(net, name))
        self.emb_features = nn.Conv2d(768, emb_dim, kernel_size=1, bias=False)
        self.emb_cnn_code = nn.Linear(2048, emb_dim)
        nn.init.uniform_(self.emb_features.weight, -0.1, 0.1)
        nn.init.uniform_(self.emb_cnn_code.weight, -0.1, 0.1)
        for param in self.backbone_parameters():
            param.requires_grad_(False)
        self.train()  # the module's default mode; the backbone is put in eval mode by train()

    def backbone_modules(self) -> list[nn.Module]:
        """The frozen Inception layers, in order."""
        return [getattr(self, name) for name in INCEPTION_LAYERS]

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Parameters of the frozen Inception layers."""
        return [p for m in self.backbone_modules() for p in m.parameters()]

    def train(self, mode: bool = True) -> InceptionEncoder:
        """Set the projections' mode; the frozen backbone stays in eval mode."""
        super().train(mode)
        for module in self.backbone_modules():
            module.eval()
        return self

    def backbone_features(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Inception features of Eq. (4): ``(f [B, 768, 17, 17], f̄ [B, 2048])`` at 299 px input."""
        _check_images(images)
        x = F.interpolate(
            images, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
        )
        x = self.Conv2d_1a_3x3(x)
        x = self.Conv2d_2a_3x3(x)
        x = self.Conv2d_2b_3x3(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_3b_1x1(x)
        x = self.Conv2d_4a_3x3(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in INCEPTION_LAYERS[5:13]:  # Mixed_5b … Mixed_6e
            x = getattr(self, name)(x)
        local = x
        for name in INCEPTION_LAYERS[13:]:  # Mixed_7a … Mixed_7c
            x = getattr(self, name)(x)
        global_feat = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return local, global_feat

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``images`` [B, 3, S, S] in [-1, 1] → ``(regions v [B, D, 17, 17], global v̄ [B, D])``, Eq. (4)."""
        local, global_feat = self.backbone_features(images)
        return self.emb_features(local), self.emb_cnn_code(global_feat)

    @classmethod
    def from_imagenet(cls, path: str | Path, emb_dim: int = 256) -> InceptionEncoder:
        """Build an encoder whose backbone holds ImageNet weights read from a local file.

        ``path`` is torchvision's ``inception_v3_google-0cc3c7bd.pth`` or any torchvision
        ``inception_v3`` state dict; ``fc.*`` and ``AuxLogits.*`` are ignored. Nothing is
        downloaded. The projections keep their random initialisation.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            ValueError: the file lacks Inception layers or their shapes differ.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"ImageNet Inception-v3 weights not found: {path}. Download torchvision's "
                f"{IMAGENET_INCEPTION_FILE} from {IMAGENET_INCEPTION_URL} on a machine with internet "
                f"(torch.hub keeps it in {Path(torch.hub.get_dir()) / 'checkpoints'}) and pass its path."
            )
        state = torch.load(path, weights_only=True, map_location="cpu")
        if not isinstance(state, dict):
            raise ValueError(f"{path} does not hold a state dict (found {type(state).__name__}).")
        state = {k.removeprefix("module."): v for k, v in state.items()}
        model = cls(emb_dim=emb_dim)
        wanted = {k for k in model.state_dict() if k.split(".")[0] in INCEPTION_LAYERS}
        backbone = _fill_batchnorm_counters(
            {k: v for k, v in state.items() if k in wanted}, model
        )
        missing = sorted(wanted - set(backbone))
        if missing:
            raise ValueError(
                f"{path} is not a torchvision Inception-v3 state dict: {len(missing)} backbone keys "
                f"are missing, e.g. {missing[:3]}. Use {IMAGENET_INCEPTION_FILE}."
            )
        own = model.state_dict()
        bad = [k for k in backbone if backbone[k].shape != own[k].shape]
        if bad:
            raise ValueError(f"{path}: tensor shapes differ from Inception-v3 for {bad[:3]}.")
        model.load_state_dict(backbone, strict=False)
        return model


def load_attngan_image_encoder(path: str | Path) -> InceptionEncoder:
    """Load AttnGAN's ``image_encoder200.pth``-format state dict into an :class:`InceptionEncoder`.

    The embedding size D is read from ``emb_cnn_code.weight``; the load is strict (besides
    BatchNorm ``num_batches_tracked`` counters that files from old PyTorch lack). Returned in
    eval mode on the CPU.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not such a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Image encoder weights not found: {path}. Use AttnGAN's pretrained DAMSM image encoder "
            "`image_encoder200.pth` (CUB) or `image_encoder100.pth` (COCO), released with AttnGAN and "
            "DF-GAN as DAMSMencoders, or train one with `csagan pretrain-damsm`."
        )
    state = torch.load(path, weights_only=True, map_location="cpu")
    if not isinstance(state, dict) or "emb_cnn_code.weight" not in state:
        raise ValueError(
            f"{path} is not an AttnGAN image-encoder state dict (no 'emb_cnn_code.weight' key)."
        )
    model = InceptionEncoder(emb_dim=int(state["emb_cnn_code.weight"].shape[0]))
    model.load_state_dict(_fill_batchnorm_counters(state, model), strict=True)
    return model.eval()


def _down(in_ch: int, out_ch: int, norm: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(out_ch))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


class SmallCNNEncoder(nn.Module):
    """A small, fully trainable image encoder for CPU runs, with the DAMSM encoder interface.

    Three stride-2 conv stages give region features at ``image_size / 8`` (8×8 = 64 regions for
    64 px), projected by ``emb_features`` (1×1 conv, W of Eq. 4); a fourth stage, global average
    pooling and ``emb_cnn_code`` (linear, W̄) give the global code. Inputs of another size are
    bilinearly resized to ``image_size``.
    """

    def __init__(self, image_size: int = 64, ndf: int = 32, emb_dim: int = 256) -> None:
        super().__init__()
        if image_size < 16 or image_size % 16 != 0:
            raise ValueError(f"image_size must be a multiple of 16 and >= 16, got {image_size}.")
        if ndf < 1 or emb_dim < 1:
            raise ValueError(f"ndf and emb_dim must be >= 1, got ndf={ndf}, emb_dim={emb_dim}.")
        self.image_size = image_size
        self.emb_dim = emb_dim
        self.features = nn.Sequential(
            _down(3, ndf, norm=False), _down(ndf, 2 * ndf), _down(2 * ndf, 4 * ndf)
        )
        self.code = _down(4 * ndf, 8 * ndf)
        self.emb_features = nn.Conv2d(4 * ndf, emb_dim, kernel_size=1, bias=False)
        self.emb_cnn_code = nn.Linear(8 * ndf, emb_dim)
        nn.init.uniform_(self.emb_features.weight, -0.1, 0.1)
        nn.init.uniform_(self.emb_cnn_code.weight, -0.1, 0.1)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``images`` [B, 3, S, S] in [-1, 1] → ``(regions [B, D, S/8, S/8], global [B, D])``."""
        _check_images(images)
        if images.shape[-2:] != (self.image_size, self.image_size):
            images = F.interpolate(
                images, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
            )
        x = self.features(images)
        regions = self.emb_features(x)
        code = F.adaptive_avg_pool2d(self.code(x), 1).flatten(1)
        return regions, self.emb_cnn_code(code)


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
