"""Tests for the generator (masks, CSA, G0) and the discriminator."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from csagan.config import ModelConfig, get_model_config, list_configs
from csagan.csa import kl_divergence
from csagan.losses import discriminator_objective, generator_objective, hinge_d_loss, magp_dfgan
from csagan.models import (
    Discriminator,
    Generator,
    discriminator_channels,
    generator_channels,
    parameter_counts,
    summary,
)

pytestmark = pytest.mark.usefixtures("single_thread")


TINY: dict[str, Any] = {"image_size": 32, "nf": 4, "d_nf": 4, "g0_nf": 2, "mlp_hidden": 8, "mask_hidden": 4}


def tiny(name: str = "csagan", **kw: Any) -> ModelConfig:
    return get_model_config(name, **{**TINY, **kw})


def _inputs(cfg: ModelConfig, b: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, cfg.z_dim, generator=g), torch.randn(b, cfg.text_dim, generator=g)


def _mask_sizes(cfg: ModelConfig) -> list[int]:
    return [8 * 2**i for i in range(len(generator_channels(cfg)))]


@pytest.mark.parametrize("name", list_configs())
def test_every_config_shapes_and_ranges(name: str) -> None:
    torch.manual_seed(0)
    cfg = tiny(name, image_size=64)
    G, D = Generator(cfg), Discriminator(cfg)
    z, s = _inputs(cfg, 3)
    out = G(z, s)
    assert out.image.shape == (3, 3, 64, 64)
    assert out.image.min() >= -1 and out.image.max() <= 1
    if cfg.uses_masks:
        assert [tuple(m.shape) for m in out.masks] == [(3, 1, k, k) for k in _mask_sizes(cfg)]
        assert all(0 <= m.min() and m.max() <= 1 for m in out.masks)
    else:
        assert out.masks == []
    assert (out.csa is not None) == cfg.use_csa
    assert (out.g0_image is not None) == cfg.use_g0
    if out.g0_image is not None:
        assert out.g0_image.shape == (3, 3, 64, 64) and out.g0_image.abs().max() <= 1
    feats = D(out.image)
    assert feats.shape == (3, 8 * cfg.d_nf, 4, 4)
    assert D.head(feats, s).shape == (3,)


@pytest.mark.parametrize("size", [128, 256])
def test_larger_sizes_batch_one(size: int) -> None:
    cfg = tiny("csagan", image_size=size)
    G, D = Generator(cfg), Discriminator(cfg)
    z, s = _inputs(cfg, 1)
    out = G(z, s)
    assert out.image.shape == (1, 3, size, size)
    assert out.masks[-1].shape == (1, 1, size, size)
    assert D.head(D(out.image), s).shape == (1,)


def test_channel_plans_match_dfgan() -> None:
    cfg = tiny(image_size=64)
    assert len(generator_channels(tiny(image_size=32))) == 3
    assert generator_channels(cfg) == [(32, 32), (32, 16), (16, 8), (8, 4)]
    assert len(generator_channels(tiny(image_size=256))) == 6
    assert len(generator_channels(tiny(image_size=128))) == 5
    assert discriminator_channels(cfg) == [(4, 8), (8, 16), (16, 32), (32, 32)]
    assert len(discriminator_channels(tiny(image_size=256))) == 6


def _assert_all_grads(module: torch.nn.Module) -> None:
    missing = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient for {missing}"


@pytest.mark.parametrize("name", ["csagan", "csagan-no-ssf", "dfgan", "ssagan"])
def test_gradients_reach_every_generator_parameter(name: str) -> None:
    torch.manual_seed(0)
    cfg = tiny(name)
    G, D = Generator(cfg), Discriminator(cfg)
    z, s = _inputs(cfg)
    out = G(z, s)
    kl = kl_divergence(out.csa.mu, out.csa.logvar) if out.csa is not None else None
    loss = generator_objective(D.head(D(out.image), s), kl=kl)["total"]
    loss.backward()
    _assert_all_grads(G)


def test_gradients_with_cbn_and_upsample_first_masks() -> None:
    for cfg in (tiny(fusion="cbn"), tiny(mask_order="upsample_then_cnn")):
        G = Generator(cfg)
        out = G(*_inputs(cfg))
        (out.image.sum() + kl_divergence(out.csa.mu, out.csa.logvar)).backward()  # type: ignore[union-attr]
        _assert_all_grads(G)


def test_printed_ssf_disconnects_first_fusion() -> None:
    """Eq. (21) as printed drops x̂, so nothing before a block's second fusion reaches the output."""
    cfg = tiny(ssf_form="printed")
    G = Generator(cfg)
    G(*_inputs(cfg)).image.sum().backward()
    missing = {n for n, p in G.named_parameters() if p.grad is None}
    expected = {n for n, _ in G.named_parameters() if n.startswith("blocks.") and (".fuse1." in n or ".conv1." in n)}
    assert missing == expected and expected


def test_gradients_reach_every_discriminator_parameter() -> None:
    torch.manual_seed(0)
    cfg = tiny()
    D = Discriminator(cfg)
    real = torch.rand(2, 3, 32, 32) * 2 - 1
    fake = torch.rand(2, 3, 32, 32) * 2 - 1
    _, s = _inputs(cfg)
    f_real = D(real)
    loss = discriminator_objective(
        D.head(f_real, s), D.head(D(fake), s), D.head(f_real, s.roll(1, 0)), gp=magp_dfgan(D, real, s, k=1.0)
    )["total"]
    loss.backward()
    _assert_all_grads(D)


def test_g0_weighted_connection() -> None:
    torch.manual_seed(0)
    cfg = tiny()
    G = Generator(cfg).eval()
    G_plain = Generator(cfg.replace(use_g0=False)).eval()
    missing, unexpected = G_plain.load_state_dict(G.state_dict(), strict=False)
    assert not missing and all(k.startswith("g0") for k in unexpected)
    z, s = _inputs(cfg)
    assert G.g0_weight is not None and G.g0_weight.item() == pytest.approx(cfg.g0_weight_init)
    with torch.no_grad():
        G.g0_weight.zero_()
        torch.testing.assert_close(G(z, s).image, G_plain(z, s).image)
        G.g0_weight.fill_(0.5)
        out = G(z, s)
        main_logits = torch.atanh(G_plain(z, s).image.double().clamp(-1 + 1e-12, 1 - 1e-12))
        g0_logits = torch.atanh(out.g0_image.double().clamp(-1 + 1e-12, 1 - 1e-12))  # type: ignore[union-attr]
        torch.testing.assert_close(out.image.double(), torch.tanh(main_logits + 0.5 * g0_logits), atol=1e-4, rtol=1e-4)


def test_state_dict_round_trip_eval_outputs_identical() -> None:
    torch.manual_seed(0)
    cfg = tiny()
    G, D = Generator(cfg), Discriminator(cfg)
    z, s = _inputs(cfg)
    G(z, s)  # update BN running statistics in train mode
    G.eval()
    D.eval()
    G2, D2 = Generator(cfg).eval(), Discriminator(cfg).eval()
    G2.load_state_dict(G.state_dict())
    D2.load_state_dict(D.state_dict())
    with torch.no_grad():
        a, b = G(z, s), G2(z, s)
        torch.testing.assert_close(a.image, b.image, rtol=0, atol=0)
        torch.testing.assert_close(D.head(D(a.image), s), D2.head(D2(a.image), s), rtol=0, atol=0)


def test_eval_mode_is_deterministic_and_uses_csa_mean() -> None:
    cfg = tiny()
    G = Generator(cfg).eval()
    z, s = _inputs(cfg)
    out = G(z, s)
    assert out.csa is not None
    torch.testing.assert_close(out.csa.code, out.csa.mu)
    torch.testing.assert_close(G(z, s).image, out.image)


def test_fixed_masks_are_copied_and_frozen() -> None:
    torch.manual_seed(0)
    source = Generator(tiny("csagan"))
    for p in source.masks.parameters():  # type: ignore[union-attr]
        torch.nn.init.normal_(p)
    G = Generator(tiny("ssagan-fixed-mask"))
    assert G.masks_frozen
    G.load_mask_predictors_from(source)
    G.train()
    assert G.masks is not None and not G.masks.training
    before = {k: v.clone() for k, v in G.masks.state_dict().items()}
    for k, v in before.items():
        torch.testing.assert_close(v, source.masks.state_dict()[k])  # type: ignore[union-attr]
    opt = torch.optim.SGD([p for p in G.parameters() if p.requires_grad], lr=1.0)
    out = G(*_inputs(G.cfg))
    out.image.sum().backward()
    opt.step()
    G(*_inputs(G.cfg))  # another train-mode forward must not update BN statistics
    for k, v in G.masks.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert all(p.grad is None for p in G.masks.parameters())


def test_fixed_masks_from_state_dict_and_mismatch() -> None:
    source = Generator(tiny("csagan"))
    G = Generator(tiny("ssagan"))
    G.load_mask_predictors_from(source.state_dict())
    assert G.masks_frozen
    with pytest.raises(ValueError, match="do not match"):
        G.load_mask_predictors_from(Generator(tiny("csagan", nf=8)))
    with pytest.raises(ValueError, match="no mask predictors"):
        Generator(tiny("dfgan")).load_mask_predictors_from(source)


def test_bfloat16_autocast_and_channels_last() -> None:
    torch.manual_seed(0)
    cfg = tiny()
    G, D = Generator(cfg), Discriminator(cfg)
    G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    z, s = _inputs(cfg)
    real = (torch.rand(2, 3, 32, 32) * 2 - 1).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = G(z, s)
        f_real = D(real)
        d_loss = hinge_d_loss(D.head(f_real, s), D.head(D(out.image.detach()), s), D.head(f_real, s.roll(1, 0)))
        gp = magp_dfgan(D, real, s)
        g_loss = generator_objective(D.head(D(out.image), s))["total"]
    (d_loss["total"] + gp + g_loss).backward()
    assert out.image.shape == (2, 3, 32, 32) and out.image.float().abs().max() <= 1
    assert all(torch.isfinite(t) for t in (d_loss["total"], gp, g_loss))
    _assert_all_grads(G)


def test_bad_inputs_raise_clear_errors() -> None:
    cfg = tiny()
    G, D = Generator(cfg), Discriminator(cfg)
    with pytest.raises(ValueError, match="noise z"):
        G(torch.randn(2, 7), torch.randn(2, 256))
    with pytest.raises(ValueError, match="sentence code"):
        G(torch.randn(2, 100), torch.randn(2, 10))
    with pytest.raises(ValueError, match="batch sizes"):
        G(torch.randn(2, 100), torch.randn(3, 256))
    with pytest.raises(ValueError, match="32"):
        D(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="sentence codes"):
        D.head(torch.randn(1, 32, 4, 4), torch.randn(1, 5))


def test_parameter_counts_sum_to_total() -> None:
    for name in ("csagan", "dfgan"):
        for net in (Generator(tiny(name)), Discriminator(tiny(name))):
            counts = parameter_counts(net)
            total = counts.pop("total")
            assert total == sum(p.numel() for p in net.parameters())
            assert sum(counts.values()) == total
    assert set(parameter_counts(Generator(tiny()))) == {
        "csa",
        "fc",
        "blocks",
        "masks",
        "to_rgb",
        "g0",
        "g0_weight",
        "total",
    }


def test_summary_builds_paper_size_without_memory() -> None:
    text = summary(get_model_config("csagan", "paper"))
    assert "G.masks" in text and "D.head" in text and "256px" in text
