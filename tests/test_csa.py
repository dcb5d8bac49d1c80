"""Tests for conditional semantic augmentation (Eq. 16)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

from csagan.csa import CSA, code_signal, kl_divergence

pytestmark = pytest.mark.usefixtures("single_thread")


def _mu_logvar(seed: int = 0, b: int = 4, c: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, generator=g, dtype=torch.float64), 0.5 * torch.randn(
        b, c, generator=g, dtype=torch.float64
    )


def test_kl_matches_torch_distributions() -> None:
    mu, logvar = _mu_logvar()
    ref = torch_kl(Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros_like(mu), torch.ones_like(mu)))
    torch.testing.assert_close(kl_divergence(mu, logvar, "none").double(), ref.sum(1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(kl_divergence(mu, logvar, "batchmean").double(), ref.sum(1).mean(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(kl_divergence(mu, logvar, "mean").double(), ref.mean(), rtol=1e-5, atol=1e-6)


def test_kl_matches_monte_carlo_estimate() -> None:
    mu, logvar = _mu_logvar(1, b=1, c=3)
    std = torch.exp(0.5 * logvar)
    g = torch.Generator().manual_seed(2)
    x = mu + std * torch.randn(200_000, 3, generator=g, dtype=torch.float64)
    log_q = Normal(mu, std).log_prob(x).sum(1)
    log_p = Normal(0.0, 1.0).log_prob(x).sum(1)
    mc = (log_q - log_p).mean()
    assert abs(mc.item() - kl_divergence(mu, logvar, "batchmean").item()) < 0.03


def test_kl_zero_at_prior_and_bad_reduction() -> None:
    z = torch.zeros(2, 5)
    assert kl_divergence(z, z).item() == 0.0
    with pytest.raises(ValueError, match="reduction"):
        kl_divergence(z, z, "sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same shape"):
        kl_divergence(z, torch.zeros(2, 4))


def test_mu_and_logvar_are_distinct_glu_halves() -> None:
    torch.manual_seed(0)
    csa = CSA(text_dim=6, c_dim=3)
    sent = torch.randn(5, 6)
    mu, logvar = csa.encode(sent)
    h = csa.fc(sent)
    glu = h[:, :6] * torch.sigmoid(h[:, 6:])
    torch.testing.assert_close(mu, glu[:, :3])
    torch.testing.assert_close(logvar, glu[:, 3:])
    torch.testing.assert_close(glu, F.glu(h, dim=1))
    assert not torch.allclose(mu, logvar)


def test_reparameterisation_mean_and_variance() -> None:
    torch.manual_seed(0)
    csa = CSA(text_dim=4, c_dim=3)
    sent = torch.randn(1, 4).expand(40_000, 4)
    out = csa(sent, sample=True, generator=torch.Generator().manual_seed(3))
    mu, logvar = out.mu[0], out.logvar[0]
    torch.testing.assert_close(out.code.mean(0), mu, atol=0.03, rtol=0)
    torch.testing.assert_close(out.code.var(0), logvar.exp(), atol=0.03, rtol=0.03)


def test_sampling_follows_mode_and_generator() -> None:
    csa = CSA(text_dim=4, c_dim=2)
    sent = torch.randn(3, 4)
    csa.eval()
    out = csa(sent)
    torch.testing.assert_close(out.code, out.mu)
    csa.train()
    a = csa(sent, generator=torch.Generator().manual_seed(5)).code
    b = csa(sent, generator=torch.Generator().manual_seed(5)).code
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, csa(sent, sample=False).code)


def test_bad_sentence_shape_raises() -> None:
    with pytest.raises(ValueError, match=r"\[B, 4\]"):
        CSA(text_dim=4, c_dim=2)(torch.randn(3, 5))


def test_code_signal_by_hand_and_limits() -> None:
    torch.manual_seed(0)
    csa = CSA(text_dim=8, c_dim=4)
    sent = torch.randn(50, 8)
    res = code_signal(csa, sent, seed=1)
    with torch.no_grad():
        mu, logvar = csa.encode(sent)
    by_hand = ((mu - mu.mean(0)) ** 2).mean(0).sum() / logvar.exp().mean(0).sum()
    assert res.between_caption == pytest.approx(float(by_hand), rel=1e-5) and res.chance == 1 / 50
    with torch.no_grad():  # tiny noise: every sample is nearest its own mean
        # GLU(a, b) = a * sigmoid(b); log σ² is the second half of a (rows 4:8), gated by rows 12:16
        csa.fc.weight[4:8].zero_()
        csa.fc.bias[4:8].fill_(-30.0)
        csa.fc.weight[12:16].zero_()
        csa.fc.bias[12:16].fill_(30.0)
        mu, logvar = csa.encode(sent)
    assert float(logvar.exp().max()) < 1e-6
    assert code_signal(csa, sent).retrieval == 1.0
    with pytest.raises(ValueError, match="B >= 2"):
        code_signal(csa, sent[:1])
