"""Fréchet distance (Eq. 27), statistics and labelled FID reports."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from csagan.metrics.fid import (
    Features,
    compute_statistics,
    fid_from_features,
    frechet_distance,
)
from csagan.metrics.stats import ReferenceStats

pytorch_fid_score = pytest.importorskip("pytorch_fid.fid_score")


def _pytorch_fid(mu1, s1, mu2, s2):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():  # it passes sqrtm's deprecated ``disp`` argument
        warnings.simplefilter("ignore")
        return float(pytorch_fid_score.calculate_frechet_distance(mu1, s1, mu2, s2))


def _trace_sqrt_reference(s1: np.ndarray, s2: np.ndarray) -> float:
    """Tr((S1 S2)^{1/2}) = Tr((S1^{1/2} S2 S1^{1/2})^{1/2}) via symmetric eigendecompositions."""
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(r @ s2 @ r)
    return float(np.sqrt(np.clip(inner, 0, None)).sum())


def test_diagonal_gaussians_match_closed_form() -> None:
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    sd1, sd2 = rng.uniform(0.2, 2, size=8), rng.uniform(0.2, 2, size=8)
    res = frechet_distance(mu1, np.diag(sd1**2), mu2, np.diag(sd2**2))
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((sd1 - sd2) ** 2)
    assert res.value == pytest.approx(expected, rel=1e-10)
    assert not res.used_eps_offset and res.max_imag == 0.0


def test_full_covariances_match_eigen_reference() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * _trace_sqrt_reference(s1, s2)
    assert frechet_distance(mu1, s1, mu2, s2).value == pytest.approx(expected, rel=1e-9)


def test_identical_gaussians_give_zero() -> None:
    rng = np.random.default_rng(2)
    mu, s = compute_statistics(rng.normal(size=(50, 5)))
    assert abs(frechet_distance(mu, s, mu, s).value) < 1e-8


@pytest.mark.parametrize("n", [300, 20])  # well-conditioned, and N < D (complex sqrtm)
def test_agrees_with_pytorch_fid_on_identical_features(n: int) -> None:
    rng = np.random.default_rng(n)
    f1 = rng.normal(size=(n, 32))
    f2 = rng.normal(0.3, 1.2, size=(n, 32))
    mu1, s1 = compute_statistics(f1)
    mu2, s2 = compute_statistics(f2)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ours.value == pytest.approx(_pytorch_fid(mu1, s1, mu2, s2), rel=1e-6)


def test_rank_deficient_features_report_discarded_imaginary_part() -> None:
    rng = np.random.default_rng(3)
    mu1, s1 = compute_statistics(rng.normal(size=(10, 64)))
    mu2, s2 = compute_statistics(rng.normal(size=(10, 64)))
    res = frechet_distance(mu1, s1, mu2, s2)
    assert 0.0 < res.max_imag < 1e-3 and res.discarded_imaginary


def test_singular_covariance_uses_eps_offset_and_reports_it() -> None:
    # sigma1 @ sigma2 = [[0, 1], [0, 0]] has no square root: sqrtm returns inf.
    s1 = np.diag([1.0, 0.0])
    s2 = np.array([[0.0, 1.0], [1.0, 2e6]])
    mu = np.zeros(2)
    res = frechet_distance(mu, s1, mu, s2, eps=1e-6)
    assert res.used_eps_offset
    off = 1e-6 * np.eye(2)
    eig = np.linalg.eigvals((s1 + off) @ (s2 + off))
    expected = np.trace(s1) + np.trace(s2) - 2 * np.sqrt(eig.astype(complex)).real.sum()
    assert res.value == pytest.approx(expected, rel=1e-9)
    assert res.value == pytest.approx(_pytorch_fid(mu, s1, mu, s2), rel=1e-9)


def test_small_imaginary_part_is_dropped_large_one_raises() -> None:
    mu = np.zeros(2)
    small = frechet_distance(mu, np.eye(2), mu, np.diag([1.0, -1e-8]))
    assert small.max_imag == pytest.approx(1e-4, rel=1e-6)
    # Tr(S1) + Tr(S2) - 2 Tr(Re sqrt(diag(1, -1e-8))) = 2 + (1 - 1e-8) - 2
    assert small.value == pytest.approx(1 - 1e-8, abs=1e-12)
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(mu, np.eye(2), mu, np.diag([1.0, -1.0]))


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="sigma1"):
        frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="dimensions"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.array([np.nan, 0]), np.eye(2), np.zeros(2), np.eye(2))


def test_compute_statistics_matches_numpy_definitions() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    mu, sigma = compute_statistics(torch.from_numpy(x))
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mu, x64.sum(0) / 40, rtol=1e-12)
    centred = x64 - x64.mean(0)
    np.testing.assert_allclose(sigma, centred.T @ centred / 39, rtol=1e-10)
    with pytest.raises(ValueError, match="N >= 2"):
        compute_statistics(np.zeros((1, 3)))


def _features(seed: int, protocol: str = "standard", weights_id: str = "w") -> Features:
    rng = np.random.default_rng(seed)
    return Features(rng.normal(size=(30, 4)).astype(np.float32), None, protocol, weights_id)


def test_fid_report_carries_labels_and_matches_frechet_distance() -> None:
    a, b = _features(0, weights_id="random (test only)"), _features(1, weights_id="random (test only)")
    rep = fid_from_features(a, b)
    expected = frechet_distance(*compute_statistics(a.pool), *compute_statistics(b.pool)).value
    assert rep.fid == pytest.approx(expected, rel=1e-12)
    assert rep.weights_id == "random (test only)" and rep.protocol == "standard"
    assert rep.to_dict()["num_images_2"] == 30
    ref = ReferenceStats.from_features(b)
    assert fid_from_features(a, ref).fid == pytest.approx(expected, rel=1e-12)


def test_fid_refuses_to_mix_networks() -> None:
    with pytest.raises(ValueError, match="protocol"):
        fid_from_features(_features(0), _features(1, protocol="dfgan"))
    with pytest.raises(ValueError, match="weights_id"):
        fid_from_features(_features(0), _features(1, weights_id="other"))
