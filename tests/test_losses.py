"""Tests for the adversarial losses and gradient penalties (Eqs. 1, 3, 22-25)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from csagan.config import get_model_config
from csagan.losses import (
    discriminator_objective,
    gan_d_loss,
    gan_g_loss,
    generator_objective,
    gp_printed,
    hinge_d_loss,
    hinge_g_loss,
    lsgan_d_loss,
    lsgan_g_loss,
    magp_dfgan,
    magp_from_outputs,
    weighted_penalties,
)
from csagan.models import Discriminator

pytestmark = pytest.mark.usefixtures("single_thread")


def _sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


REAL = torch.tensor([2.0, -0.5, 0.3])
FAKE = torch.tensor([-1.5, 0.7, 3.0])
MIS = torch.tensor([0.0, -2.0, 0.5])


def test_gan_d_loss_matches_log_formula() -> None:
    expected = (
        -sum(math.log(_sig(v)) for v in REAL.tolist()) / 3 - sum(math.log(1 - _sig(v)) for v in FAKE.tolist()) / 3
    )
    assert gan_d_loss(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_gan_g_loss_both_forms() -> None:
    ns = -sum(math.log(_sig(v)) for v in FAKE.tolist()) / 3
    sat = sum(math.log(1 - _sig(v)) for v in FAKE.tolist()) / 3
    assert gan_g_loss(FAKE).item() == pytest.approx(ns, rel=1e-6)
    assert gan_g_loss(FAKE, non_saturating=False).item() == pytest.approx(sat, rel=1e-6)


def test_gan_losses_are_stable_for_large_logits() -> None:
    big = torch.tensor([1000.0, -1000.0])
    assert torch.isfinite(gan_d_loss(big, -big)) and torch.isfinite(gan_g_loss(big))
    assert gan_d_loss(torch.tensor([1000.0]), torch.tensor([-1000.0])).item() == pytest.approx(0.0, abs=1e-6)


def test_lsgan_roles() -> None:
    d = 0.5 * sum((v - 1) ** 2 for v in REAL.tolist()) / 3 + 0.5 * sum(v**2 for v in FAKE.tolist()) / 3
    g = 0.5 * sum((v - 1) ** 2 for v in FAKE.tolist()) / 3
    assert lsgan_d_loss(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert lsgan_g_loss(FAKE).item() == pytest.approx(g, rel=1e-6)
    # optimum of D: real → 1, fake → 0; of G: fake → 1
    assert lsgan_d_loss(torch.ones(2), torch.zeros(2)).item() == 0.0
    assert lsgan_g_loss(torch.ones(2)).item() == 0.0


def test_hinge_terms_on_hand_picked_scores() -> None:
    t = hinge_d_loss(REAL, FAKE, MIS)
    # relu(1 - [2, -0.5, 0.3]) = [0, 1.5, 0.7]; relu(1 + [-1.5, 0.7, 3]) = [0, 1.7, 4];
    # relu(1 + [0, -2, 0.5]) = [1, 0, 1.5]
    assert t["real"].item() == pytest.approx(2.2 / 3)
    assert t["fake"].item() == pytest.approx(0.5 * 5.7 / 3)
    assert t["mismatch"].item() == pytest.approx(0.5 * 2.5 / 3)
    assert t["total"].item() == pytest.approx(2.2 / 3 + 0.5 * 5.7 / 3 + 0.5 * 2.5 / 3)
    assert hinge_g_loss(FAKE).item() == pytest.approx(-2.2 / 3)


class TinyD(nn.Module):
    """A small conditional D (features + head) on 3×3×3 images, in double precision."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 2, 2).double()
        self.lin = nn.Linear(2 * 4 + 3, 1).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))

    def head(self, f: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return self.lin(torch.cat([f.reshape(f.shape[0], -1), torch.sin(s)], 1)).reshape(-1)


def _fd_grad(fn, x: torch.Tensor, h: float = 1e-6) -> torch.Tensor:  # type: ignore[no-untyped-def]
    g = torch.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + h
        up = fn()
        flat[i] = old - h
        down = fn()
        flat[i] = old
        gflat[i] = (up - down) / (2 * h)
    return g


def test_magp_matches_finite_difference_gradient_norm() -> None:
    D = TinyD()
    x = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    s = torch.randn(2, 3, dtype=torch.float64)
    norms = []
    with torch.no_grad():
        for b in range(2):
            xb, sb = x[b : b + 1].clone(), s[b : b + 1].clone()

            def score() -> float:
                return D.head(D(xb), sb).item()  # noqa: B023

            gx, gs = _fd_grad(score, xb), _fd_grad(score, sb)
            norms.append(math.sqrt(gx.pow(2).sum().item() + gs.pow(2).sum().item()))
    expected = 2.0 * sum(n**6 for n in norms) / 2
    got = magp_dfgan(D, x, s, k=2.0, p=6.0)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert magp_dfgan(D, x, s, k=1.0, p=2.0).item() == pytest.approx(sum(n**2 for n in norms) / 2, rel=1e-5)


def test_magp_on_real_discriminator_matches_batched_finite_differences() -> None:
    """Central differences over every pixel and sentence entry of the project's D (double precision)."""
    cfg = get_model_config("dfgan", image_size=32, d_nf=1, text_dim=4)
    torch.manual_seed(3)
    D = Discriminator(cfg).double().eval()
    with torch.no_grad():
        for name, param in D.named_parameters():
            if name.endswith(".gamma"):
                param.fill_(1.0)  # make the residual branches count
    x = torch.rand(1, 3, 32, 32, dtype=torch.float64) * 2 - 1
    s = torch.randn(1, 4, dtype=torch.float64)
    h = 1e-5
    n_x, n_s = x.numel(), s.numel()
    eye_x = torch.eye(n_x, dtype=torch.float64).reshape(n_x, 3, 32, 32)
    eye_s = torch.eye(n_s, dtype=torch.float64)
    with torch.no_grad():
        gx = (D.head(D(x + h * eye_x), s.expand(n_x, -1)) - D.head(D(x - h * eye_x), s.expand(n_x, -1))) / (2 * h)
        xs = x.expand(n_s, -1, -1, -1)
        gs = (D.head(D(xs), s + h * eye_s) - D.head(D(xs), s - h * eye_s)) / (2 * h)
    norm2 = gx.pow(2).sum().item() + gs.pow(2).sum().item()
    assert norm2 > 0
    assert magp_dfgan(D, x, s, k=2.0, p=6.0).item() == pytest.approx(2.0 * norm2**3, rel=1e-5)


def test_magp_backpropagates_into_discriminator() -> None:
    D = TinyD()
    gp = magp_dfgan(D, torch.randn(2, 3, 3, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64))
    gp.backward()
    assert D.conv.weight.grad is not None and D.conv.weight.grad.abs().sum() > 0


def test_magp_from_outputs_requires_grad_inputs() -> None:
    D = TinyD()
    x, s = torch.randn(2, 3, 3, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="require grad"):
        magp_from_outputs(D.head(D(x), s), x, s)


def test_magp_on_real_discriminator_in_bfloat16_autocast() -> None:
    cfg = get_model_config("dfgan", image_size=32, d_nf=2)
    D = Discriminator(cfg)
    x, s = torch.rand(2, 3, 32, 32) * 2 - 1, torch.randn(2, 256)
    ref = magp_dfgan(D, x, s)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = magp_dfgan(D, x, s)
    assert low.dtype == torch.float32 and torch.isfinite(low)
    assert low.item() == pytest.approx(ref.item(), rel=0.2)


def test_gp_printed_matches_hand_computation() -> None:
    D = TinyD()
    real = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    fake = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    s = torch.randn(2, 3, dtype=torch.float64)
    alpha = torch.rand((2, 1, 1, 1), generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    x_hat = alpha * real + (1 - alpha) * fake
    total = 0.0
    with torch.no_grad():
        for b in range(2):
            xb, sb = x_hat[b : b + 1].clone(), s[b : b + 1]

            def score() -> float:
                return D.head(D(xb), sb).item()  # noqa: B023

            total += (_fd_grad(score, xb).norm().item() - 1.0) ** 2
    got = gp_printed(D, real, fake, s, weight=3.0, generator=torch.Generator().manual_seed(7))
    assert got.item() == pytest.approx(3.0 * total / 2, rel=1e-5)


def test_weighted_penalties_eq23() -> None:
    out = weighted_penalties([torch.tensor(2.0), torch.tensor(5.0)], [0.5, 3.0])
    assert out.item() == pytest.approx(16.0)
    with pytest.raises(ValueError, match="weights"):
        weighted_penalties([torch.tensor(1.0)], [1.0, 2.0])


def test_generator_objective_weights() -> None:
    fake, damsm, kl = torch.tensor([1.0, 3.0]), torch.tensor(4.0), torch.tensor(10.0)
    out = generator_objective(fake, damsm=damsm, kl=kl, lambdas=(2.0, 0.01, 0.05))
    assert out["adv"].item() == pytest.approx(-2.0)
    assert out["damsm"].item() == pytest.approx(0.2)
    assert out["kl"].item() == pytest.approx(0.1)
    assert out["total"].item() == pytest.approx(-2.0 + 0.2 + 0.1)
    moved = generator_objective(fake, damsm=damsm, kl=kl, kl_side="discriminator")
    assert moved["total"].item() == pytest.approx(-2.0 + 0.2)
    assert generator_objective(fake)["total"].item() == pytest.approx(-2.0)


def test_discriminator_objective_weights_and_kl_side() -> None:
    gp, kl = torch.tensor(0.5), torch.tensor(10.0)
    hinge = hinge_d_loss(REAL, FAKE, MIS)["total"].item()
    out = discriminator_objective(REAL, FAKE, MIS, gp=gp, kl=kl, lambdas=(2.0, 0.01, 0.05))
    assert out["total"].item() == pytest.approx(hinge + 1.0)
    printed = discriminator_objective(REAL, FAKE, MIS, gp=gp, kl=kl, kl_side="discriminator")
    assert printed["kl"].item() == pytest.approx(0.1)
    assert printed["total"].item() == pytest.approx(hinge + 1.0 + 0.1)
    with pytest.raises(ValueError, match="kl_side"):
        discriminator_objective(REAL, FAKE, MIS, kl_side="both")  # type: ignore[arg-type]
