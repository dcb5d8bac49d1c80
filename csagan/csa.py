"""Conditional semantic augmentation (CSA, Sec. 3.2, Eq. 16).

The sentence code φ_t is mapped to the mean μ(φ_t) and the log-variance log σ²(φ_t) of a
diagonal Gaussian; the generator is conditioned on a sample ĉ = μ + σ ⊙ ε, ε ~ N(0, I)
(reparameterisation), and the KL divergence D_KL(N(μ, σ²) ‖ N(0, I)) of Eq. (16) keeps the
distribution close to the prior. The layout follows StackGAN++'s conditioning augmentation:
Linear(text_dim → 4c) → GLU → 2c, split into μ (first c) and log σ² (last c).

**Issue** (probable authors' code): its log-variance slice repeats μ's slice, so σ² = exp(μ);
this module uses the two distinct halves.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CSA", "CSAOutput", "CodeSignal", "code_signal", "kl_divergence"]


class CSAOutput(NamedTuple):
    """Result of :class:`CSA`: the code ĉ [B, c], and μ, log σ² [B, c] (Eq. 16)."""

    code: Tensor
    mu: Tensor
    logvar: Tensor


class CSA(nn.Module):
    """Conditional semantic augmentation (Sec. 3.2): sentence [B, text_dim] → code [B, c_dim].

    Args:
        text_dim: sentence-code dimension (256, Sec. 3.1).
        c_dim: dimension of the augmented code ĉ.
    """

    def __init__(self, text_dim: int = 256, c_dim: int = 100) -> None:
        super().__init__()
        if text_dim < 1 or c_dim < 1:
            raise ValueError(f"CSA needs positive text_dim and c_dim, got {text_dim} and {c_dim}.")
        self.text_dim = text_dim
        self.c_dim = c_dim
        self.fc = nn.Linear(text_dim, 4 * c_dim)

    def encode(self, sent: Tensor) -> tuple[Tensor, Tensor]:
        """μ(φ_t) and log σ²(φ_t), each [B, c_dim]: Linear → GLU → split."""
        if sent.dim() != 2 or sent.shape[1] != self.text_dim:
            raise ValueError(
                f"CSA expects a sentence code of shape [B, {self.text_dim}], got {tuple(sent.shape)}; "
                "pass the text encoder's sentence embedding."
            )
        h = F.glu(self.fc(sent), dim=1)
        return h[:, : self.c_dim], h[:, self.c_dim :]

    def forward(
        self,
        sent: Tensor,
        *,
        sample: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> CSAOutput:
        """ĉ = μ + ε ⊙ exp(½ log σ²) (reparameterisation), or ĉ = μ when not sampling.

        Args:
            sent: sentence codes [B, text_dim].
            sample: draw ε (True) or return the mean (False); None samples in training mode and
                returns the mean in eval mode.
            generator: optional ``torch.Generator`` for ε (must live on ``sent``'s device).
        """
        mu, logvar = self.encode(sent)
        do_sample = self.training if sample is None else sample
        if not do_sample:
            return CSAOutput(mu, mu, logvar)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        code = mu + eps * torch.exp(0.5 * logvar)
        return CSAOutput(code, mu, logvar)


def kl_divergence(
    mu: Tensor,
    logvar: Tensor,
    reduction: Literal["mean", "batchmean", "none"] = "mean",
) -> Tensor:
    """Closed-form D_KL(N(μ, diag σ²) ‖ N(0, I)) of Eq. (16), computed in float32.

    Per element the divergence is −½ (1 + log σ² − μ² − σ²). Reductions:

    * ``"mean"``: mean over all elements (batch and dimensions), StackGAN++/AttnGAN's
      convention, the one λ2 = 0.01 was tuned with; equals the true KL divided by c.
    * ``"batchmean"``: sum over the c dimensions (the true KL of each sample), mean over the batch.
    * ``"none"``: the per-sample KL [B] (sum over dimensions).
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}.")
    mu32, lv32 = mu.float(), logvar.float()
    per_elem = -0.5 * (1.0 + lv32 - mu32.pow(2) - lv32.exp())
    if reduction == "mean":
        return per_elem.mean()
    per_sample = per_elem.reshape(per_elem.shape[0], -1).sum(dim=1)
    if reduction == "batchmean":
        return per_sample.mean()
    if reduction == "none":
        return per_sample
    raise ValueError(f"kl_divergence: reduction={reduction!r} is invalid; use 'mean', 'batchmean' or 'none'.")


class CodeSignal(NamedTuple):
    """How much of the sentence survives in the sampled code ĉ = μ + σ ⊙ ε (:func:`code_signal`).

    Attributes:
        between_caption: Σ_j Var_captions(μ_j) / Σ_j E[σ_j²]: the caption-to-caption spread of the
            mean code against the sampling noise (0 when ĉ carries no caption information).
        retrieval: share of captions whose sampled ĉ is nearest (Euclidean) to its own μ among
            all the captions' μ (chance: 1 / number of captions).
        chance: 1 / number of captions.
    """

    between_caption: float
    retrieval: float
    chance: float


@torch.no_grad()
def code_signal(csa: CSA, sent: Tensor, seed: int = 0) -> CodeSignal:
    """Measure how much the CSA sample of Eq. (16) tells the captions apart.

    A trained CSA must make μ(ē) vary between captions more than the noise σ ⊙ ε it adds;
    with the layer's initial weights, μ is small and σ ≈ 1, so ĉ is nearly pure noise.

    Args:
        csa: the CSA layer (e.g. ``generator.csa``).
        sent: sentence codes [B, text_dim] of B ≥ 2 different captions.
        seed: seed of ε.
    """
    if sent.dim() != 2 or sent.shape[0] < 2:
        raise ValueError(f"code_signal needs sentence codes [B >= 2, text_dim], got {tuple(sent.shape)}.")
    mu, logvar = csa.encode(sent.float())
    mu, var = mu.float(), logvar.float().exp()
    spread = float(mu.var(dim=0, unbiased=False).sum() / var.mean(dim=0).sum())
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(int(seed)))
    code = mu + eps.to(mu.device) * var.sqrt()
    hits = torch.cdist(code, mu).argmin(dim=1) == torch.arange(len(mu), device=mu.device)
    return CodeSignal(spread, float(hits.float().mean()), 1.0 / len(mu))
