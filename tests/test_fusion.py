"""Tests for the fusion layers and the mask predictor (Eqs. 17-21, Sec. 3.3)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from csagan.fusion import SSF, AffineFusion, ConditionalBatchNorm2d, DFFuse, MaskPredictor, ModulationMLP, batch_norm

pytestmark = pytest.mark.usefixtures("single_thread")


def _x(seed: int = 0, shape: tuple[int, ...] = (3, 4, 5, 6)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 2.0 * torch.randn(*shape, generator=g) + 1.0


def _loop_batch_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float) -> torch.Tensor:
    out = torch.empty_like(x)
    for c in range(x.shape[1]):
        v = x[:, c].flatten().tolist()
        m = sum(v) / len(v)
        var = sum((a - m) ** 2 for a in v) / len(v)
        out[:, c] = gamma[c] * (x[:, c] - m) / (var + eps) ** 0.5 + beta[c]
    return out


def test_batch_norm_function_matches_hand_loop() -> None:
    x = _x().double()
    gamma, beta = torch.tensor([1.0, 2.0, -0.5, 0.3]).double(), torch.tensor([0.0, 1.0, 2.0, -1.0]).double()
    torch.testing.assert_close(batch_norm(x, gamma, beta, eps=1e-5), _loop_batch_norm(x, gamma, beta, 1e-5))


@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_function_matches_torch_layer(train: bool) -> None:
    x = _x()
    bn = nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, -0.5, 0.3]))
        bn.bias.copy_(torch.tensor([0.0, 1.0, 2.0, -1.0]))
    for _ in range(3):
        bn(_x(1) * 3)  # populate running statistics
    bn.train(train)
    ref = bn(x)
    if train:
        ours = batch_norm(x, bn.weight, bn.bias, eps=bn.eps)
    else:
        ours = batch_norm(x, bn.weight, bn.bias, mean=bn.running_mean, var=bn.running_var, eps=bn.eps)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def _set_constant(mlp: ModulationMLP, value: torch.Tensor) -> None:
    with torch.no_grad():
        mlp.fc2.weight.zero_()
        mlp.fc2.bias.copy_(value)


@pytest.mark.parametrize("train", [True, False])
def test_cbn_with_constant_mlps_equals_batchnorm2d(train: bool) -> None:
    gamma, beta = torch.tensor([1.5, 0.5, -1.0, 2.0]), torch.tensor([0.1, -0.2, 0.3, 0.0])
    cbn = ConditionalBatchNorm2d(4, cond_dim=5)
    _set_constant(cbn.gamma, gamma - 1.0)  # γ_mlp = 1 + MLP_γ
    _set_constant(cbn.beta, beta)
    bn = nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.weight.copy_(gamma)
        bn.bias.copy_(beta)
    for _ in range(2):
        cbn(_x(2), torch.randn(3, 5))
        bn(_x(2))
    cbn.train(train)
    bn.train(train)
    x = _x(3)
    torch.testing.assert_close(cbn(x, torch.randn(3, 5)), bn(x), rtol=1e-5, atol=1e-5)


def test_cbn_per_sample_modulation() -> None:
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(4, cond_dim=5)
    nn.init.normal_(cbn.gamma.fc2.weight)
    nn.init.normal_(cbn.beta.fc2.weight)
    x, c = _x(), torch.randn(3, 5)
    x_hat = batch_norm(x)
    g = 1 + cbn.gamma.fc2(F.relu(cbn.gamma.fc1(c)))
    b = cbn.beta.fc2(F.relu(cbn.beta.fc1(c)))
    ref = x_hat * g[:, :, None, None] + b[:, :, None, None]
    torch.testing.assert_close(cbn(x, c), ref, rtol=1e-4, atol=1e-4)


def _random_ssf(form: str = "code") -> SSF:
    torch.manual_seed(1)
    ssf = SSF(4, cond_dim=5, hidden=7, form=form)  # type: ignore[arg-type]
    nn.init.normal_(ssf.gamma.fc2.weight)
    nn.init.normal_(ssf.beta.fc2.weight)
    nn.init.normal_(ssf.beta.fc2.bias)
    return ssf


def test_ssf_with_unit_mask_equals_cbn() -> None:
    ssf = _random_ssf()
    cbn = ConditionalBatchNorm2d(4, cond_dim=5, hidden=7)
    cbn.load_state_dict(ssf.state_dict())
    x, c = _x(), torch.randn(3, 5)
    torch.testing.assert_close(ssf(x, c, torch.ones(3, 1, 5, 6)), cbn(x, c))


def test_ssf_with_zero_mask_is_plain_normalisation() -> None:
    ssf = _random_ssf()
    x, c = _x(), torch.randn(3, 5)
    torch.testing.assert_close(ssf(x, c, torch.zeros(3, 1, 5, 6)), batch_norm(x), rtol=1e-5, atol=1e-5)


def test_ssf_spatial_mask_formula() -> None:
    ssf = _random_ssf()
    x, c = _x(), torch.randn(3, 5)
    m = torch.rand(3, 1, 5, 6)
    out = ssf(x, c, m)
    x_hat = batch_norm(x)
    g = ssf.gamma.fc2(F.relu(ssf.gamma.fc1(c)))
    b = ssf.beta.fc2(F.relu(ssf.beta.fc1(c)))
    i, ch, h, w = 1, 2, 3, 4
    expected = x_hat[i, ch, h, w] * (1 + m[i, 0, h, w] * g[i, ch]) + m[i, 0, h, w] * b[i, ch]
    torch.testing.assert_close(out[i, ch, h, w], expected, rtol=1e-4, atol=1e-5)


def test_ssf_printed_form_drops_features() -> None:
    ssf = _random_ssf("printed")
    c, m = torch.randn(3, 5), torch.rand(3, 1, 5, 6)
    out1, out2 = ssf(_x(0), c, m), ssf(_x(9), c, m)
    torch.testing.assert_close(out1, out2)
    g = ssf.gamma.fc2(F.relu(ssf.gamma.fc1(c)))
    b = ssf.beta.fc2(F.relu(ssf.beta.fc1(c)))
    torch.testing.assert_close(out1, m * (g + b)[:, :, None, None])


def test_ssf_rejects_bad_mask_and_condition() -> None:
    ssf = SSF(4, cond_dim=5)
    with pytest.raises(ValueError, match="mask"):
        ssf(_x(), torch.randn(3, 5), torch.ones(3, 1, 4, 4))
    with pytest.raises(ValueError, match="condition"):
        ssf(_x(), torch.randn(3, 6))
    with pytest.raises(ValueError, match="form"):
        SSF(4, 5, form="other")  # type: ignore[arg-type]


def test_affine_fusion_is_identity_at_init() -> None:
    aff = AffineFusion(4, cond_dim=5)
    x = _x()
    torch.testing.assert_close(aff(x, torch.randn(3, 5)), x)


def test_dffuse_at_init_is_double_leaky_relu() -> None:
    fuse = DFFuse(4, cond_dim=5)
    x = _x()
    expected = torch.where(x > 0, x, 0.04 * x)
    torch.testing.assert_close(fuse(x, torch.randn(3, 5)), expected)


@pytest.mark.parametrize("order", ["cnn_then_upsample", "upsample_then_cnn"])
def test_mask_predictor_shape_and_range(order: str) -> None:
    torch.manual_seed(0)
    mp = MaskPredictor(6, hidden=10, order=order)  # type: ignore[arg-type]
    m = mp(10 * torch.randn(2, 6, 4, 5))
    assert m.shape == (2, 1, 8, 10)
    assert m.min() >= 0 and m.max() <= 1


def test_mask_predictor_orders_match_hand_composition() -> None:
    torch.manual_seed(0)
    mp = MaskPredictor(3, hidden=4).eval()
    x = torch.randn(2, 3, 4, 4)

    def cnn(t: torch.Tensor) -> torch.Tensor:
        return mp.conv2(F.relu(mp.bn(mp.conv1(t))))

    def up(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, scale_factor=2.0, mode="bilinear", align_corners=False)

    torch.testing.assert_close(mp(x), torch.sigmoid(up(cnn(x))))
    mp.order = "upsample_then_cnn"
    torch.testing.assert_close(mp(x), torch.sigmoid(cnn(up(x))))
    with pytest.raises(ValueError, match="order"):
        MaskPredictor(3, order="bad")  # type: ignore[arg-type]
