"""Adversarial losses and gradient penalties (Eqs. 1, 3, 22-25).

All losses take raw discriminator scores (logits) and are computed in float32, so they are safe
under ``torch.autocast(..., dtype=torch.bfloat16)``.

* Eq. (1), the original GAN: :func:`gan_d_loss`, :func:`gan_g_loss` (softplus form).
* Eq. (3), LSGAN: :func:`lsgan_d_loss`, :func:`lsgan_g_loss`.
* Eq. (24), hinge loss with mismatched captions: :func:`hinge_d_loss`; Eq. (25): :func:`hinge_g_loss`.
* Eqs. (22)-(23), gradient penalties: :func:`magp_dfgan` (DF-GAN's zero-centred matching-aware
  penalty, the default) and :func:`gp_printed` (Eq. 22 as printed), :func:`weighted_penalties` (23).
* Full objectives: :func:`discriminator_objective` (24) and :func:`generator_objective` (25).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ConditionalDiscriminator",
    "discriminator_objective",
    "gan_d_loss",
    "gan_g_loss",
    "generator_objective",
    "gp_printed",
    "hinge_d_loss",
    "hinge_g_loss",
    "lsgan_d_loss",
    "lsgan_g_loss",
    "magp_dfgan",
    "magp_from_outputs",
    "weighted_penalties",
]

KLSide = Literal["generator", "discriminator"]


class ConditionalDiscriminator(Protocol):
    """What the penalties need: ``D(images) -> features`` and ``D.head(features, sent) -> [B]``."""

    def __call__(self, images: Tensor) -> Tensor: ...

    def head(self, features: Tensor, sent: Tensor) -> Tensor: ...


def _f32(x: Tensor) -> Tensor:
    return x.float()


# ----------------------------------------------------------------- Eq. (1)
def gan_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator side of Eq. (1) as a loss to minimise: −E[log D(x)] − E[log(1 − D(G(z)))],
    with D = sigmoid(logits): softplus(−real) + softplus(fake), averaged."""
    return F.softplus(-_f32(real_logits)).mean() + F.softplus(_f32(fake_logits)).mean()


def gan_g_loss(fake_logits: Tensor, non_saturating: bool = True) -> Tensor:
    """Generator side of Eq. (1). Non-saturating (default): −E[log D(G(z))] = E[softplus(−l)];
    saturating (the printed min-max): E[log(1 − D(G(z)))] = −E[softplus(l)]."""
    logits = _f32(fake_logits)
    if non_saturating:
        return F.softplus(-logits).mean()
    return -F.softplus(logits).mean()


# ----------------------------------------------------------------- Eq. (3)
def lsgan_d_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """LSGAN discriminator loss, minimised: ½E[(D(x) − 1)²] + ½E[D(G(z))²].

    **Issue**: Eq. (3) prints LSGAN as a min-max of this one expression; in fact D *minimises* it
    and G minimises a different one, :func:`lsgan_g_loss` (Mao et al. 2017, coding a=0, b=c=1).
    """
    return 0.5 * (_f32(real_scores) - 1).pow(2).mean() + 0.5 * _f32(fake_scores).pow(2).mean()


def lsgan_g_loss(fake_scores: Tensor) -> Tensor:
    """LSGAN generator loss, minimised: ½E[(D(G(z)) − 1)²] (see :func:`lsgan_d_loss`)."""
    return 0.5 * (_f32(fake_scores) - 1).pow(2).mean()


# ---------------------------------------------------------- Eqs. (24), (25)
def hinge_d_loss(real: Tensor, fake: Tensor, mismatched: Tensor) -> dict[str, Tensor]:
    """Hinge terms of Eq. (24): E[relu(1 − D(x,t))] + ½E[relu(1 + D(x̂,t))] + ½E[relu(1 + D(x,t̂))].

    Args:
        real: scores of real images with their captions D(x, t).
        fake: scores of generated images with their captions D(x̂, t).
        mismatched: scores of real images with mismatched captions D(x, t̂).

    Returns:
        dict with ``real``, ``fake`` and ``mismatch`` (each already weighted: 1, ½, ½) and ``total``.
    """
    r = F.relu(1.0 - _f32(real)).mean()
    f = 0.5 * F.relu(1.0 + _f32(fake)).mean()
    m = 0.5 * F.relu(1.0 + _f32(mismatched)).mean()
    return {"real": r, "fake": f, "mismatch": m, "total": r + f + m}


def hinge_g_loss(fake: Tensor) -> Tensor:
    """Adversarial part of Eq. (25): −E[D(x̂, t)]."""
    return -_f32(fake).mean()


# ---------------------------------------------------------- Eqs. (22), (23)
def magp_from_outputs(scores: Tensor, images: Tensor, sent: Tensor, k: float = 2.0, p: float = 6.0) -> Tensor:
    """DF-GAN's MA-GP from scores already computed on ``images`` and ``sent`` (both requiring grad).

    k · mean_b ‖(∇_x D(x_b, e_b), ∇_e D(x_b, e_b))‖₂^p, with the two gradients flattened and
    concatenated per sample; the norm is computed in float32 as (Σ g²)^(p/2). The graph is kept
    (``create_graph=True``) so the penalty can be back-propagated into D.
    """
    if not (images.requires_grad and sent.requires_grad):
        raise ValueError(
            "magp_from_outputs: images and sent must require grad and be the inputs the scores were "
            "computed from; call .requires_grad_() on them before the forward pass (or use magp_dfgan)."
        )
    g_img, g_sent = torch.autograd.grad(scores.float().sum(), (images, sent), create_graph=True)
    b = images.shape[0]
    grads = torch.cat([g_img.reshape(b, -1).float(), g_sent.reshape(b, -1).float()], dim=1)
    sq = grads.pow(2).sum(dim=1)
    return k * sq.pow(p / 2.0).mean()


def magp_dfgan(
    D: ConditionalDiscriminator, real_images: Tensor, sent: Tensor, k: float = 2.0, p: float = 6.0
) -> Tensor:
    """Matching-aware zero-centred gradient penalty (DF-GAN; what Sec. 3.5's text describes).

    Computed on real images with their matching sentences: k · E[‖(∇_x D(x,e), ∇_e D(x,e))‖₂^p],
    with D(x, e) = D.head(D(x), e). DF-GAN uses k = 2, p = 6. To weight it with λ1 in
    :func:`discriminator_objective`, compute it with k = 1.

    **Issue**: Eq. (22) prints a different penalty, see :func:`gp_printed`.
    """
    x = real_images.detach().requires_grad_(True)
    s = sent.detach().requires_grad_(True)
    scores = D.head(D(x), s)
    return magp_from_outputs(scores, x, s, k=k, p=p)


def gp_printed(
    D: ConditionalDiscriminator,
    real: Tensor,
    fake: Tensor,
    sent: Tensor,
    weight: float = 1.0,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Eq. (22) as printed: weight · E_x̂[(‖∇_x̂ D(x̂, t)‖₂ − 1)²] (one-centred, WGAN-GP style).

    x̂ = α·real + (1 − α)·fake with α ~ U[0, 1] per sample (drawn with ``generator``), scored with
    the matching sentences ``sent``; the gradient is taken w.r.t. x̂ only, its norm in float32.
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"gp_printed: real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}."
        )
    b = real.shape[0]
    alpha = torch.rand((b, 1, 1, 1), generator=generator, device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = D.head(D(x_hat), sent.detach())
    (g,) = torch.autograd.grad(scores.float().sum(), (x_hat,), create_graph=True)
    norm = torch.linalg.vector_norm(g.reshape(b, -1).float(), dim=1)
    return weight * (norm - 1.0).pow(2).mean()


def weighted_penalties(penalties: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """Eq. (23): L_MA-GP = Σ_c w_c · GP_c."""
    if len(penalties) != len(weights) or not penalties:
        raise ValueError(
            f"weighted_penalties: need as many weights as penalties (>0), got {len(penalties)} and {len(weights)}."
        )
    total = penalties[0].float() * weights[0]
    for gp, w in zip(penalties[1:], weights[1:]):
        total = total + gp.float() * w
    return total


# ------------------------------------------------------------- objectives
def _check_side(kl_side: str) -> None:
    if kl_side not in ("generator", "discriminator"):
        raise ValueError(f"kl_side={kl_side!r} is invalid; use 'generator' or 'discriminator'.")


def discriminator_objective(
    real: Tensor,
    fake: Tensor,
    mismatched: Tensor,
    gp: Tensor | None = None,
    kl: Tensor | None = None,
    lambdas: tuple[float, float, float] = (2.0, 0.01, 0.05),
    kl_side: KLSide = "generator",
) -> dict[str, Tensor]:
    """Eq. (24): hinge terms + λ1·L_MA-GP (+ λ2·KL when ``kl_side="discriminator"``).

    Args:
        real, fake, mismatched: scores as in :func:`hinge_d_loss`.
        gp: the *unweighted* penalty (e.g. ``magp_dfgan(D, x, s, k=1)``); it is multiplied by λ1,
            so λ1 = 2 reproduces DF-GAN's 2·mean(‖∇‖⁶).
        kl: the CSA KL term (Eq. 16).
        lambdas: (λ1, λ2, λ3).
        kl_side: **Issue**: Eq. (24) prints λ2·KL in D's loss, but the CSA network belongs to the
            generator, whose optimiser must receive the KL gradient; the default "generator" adds
            it in :func:`generator_objective` and ignores ``kl`` here. "discriminator" follows the
            print (then the trainer must let D's loss update the CSA parameters).

    Returns:
        dict with ``real``, ``fake``, ``mismatch``, ``gp``, ``kl`` (weighted contributions) and ``total``.
    """
    _check_side(kl_side)
    terms = hinge_d_loss(real, fake, mismatched)
    zero = terms["total"].new_zeros(())
    gp_term = lambdas[0] * gp.float() if gp is not None else zero
    kl_term = lambdas[1] * kl.float() if (kl is not None and kl_side == "discriminator") else zero
    total = terms["total"] + gp_term + kl_term
    return {**{k: v for k, v in terms.items() if k != "total"}, "gp": gp_term, "kl": kl_term, "total": total}


def generator_objective(
    fake_scores: Tensor,
    damsm: Tensor | None = None,
    kl: Tensor | None = None,
    lambdas: tuple[float, float, float] = (2.0, 0.01, 0.05),
    kl_side: KLSide = "generator",
) -> dict[str, Tensor]:
    """Eq. (25): L_G = −E[D(x̂, t)] + λ3·L_DAMSM (+ λ2·KL, the default ``kl_side="generator"``).

    Args:
        fake_scores: D(x̂, t) for generated images with their captions.
        damsm: the DAMSM loss of Eq. (12) as a scalar tensor (e.g. ``damsm_loss(...).total``).
        kl: the CSA KL term (Eq. 16), e.g. ``kl_divergence(out.csa.mu, out.csa.logvar)``.
        lambdas: (λ1, λ2, λ3); λ1 is not used here.
        kl_side: see :func:`discriminator_objective`.

    Returns:
        dict with ``adv``, ``damsm``, ``kl`` (weighted contributions) and ``total``.
    """
    _check_side(kl_side)
    adv = hinge_g_loss(fake_scores)
    zero = adv.new_zeros(())
    damsm_term = lambdas[2] * damsm.float() if damsm is not None else zero
    kl_term = lambdas[1] * kl.float() if (kl is not None and kl_side == "generator") else zero
    return {"adv": adv, "damsm": damsm_term, "kl": kl_term, "total": adv + damsm_term + kl_term}
