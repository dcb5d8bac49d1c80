"""npz reference statistics: round trip, pytorch-fid/DF-GAN layout, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from csagan.metrics.fid import Features
from csagan.metrics.stats import ReferenceStats, load_stats, save_stats


def _stats(d: int = 4) -> ReferenceStats:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(d, d))
    return ReferenceStats(rng.normal(size=d), a @ a.T, 123, "standard", "pt_inception sha256:abc")


def test_round_trip_keeps_arrays_and_labels(tmp_path: Path) -> None:
    st = _stats()
    path = save_stats(tmp_path / "ref", st)
    assert path.name == "ref.npz"
    back = load_stats(path)
    np.testing.assert_array_equal(back.mu, st.mu)
    np.testing.assert_array_equal(back.sigma, st.sigma)
    assert (back.num_images, back.protocol, back.weights_id) == (123, "standard", "pt_inception sha256:abc")


def test_reads_pytorch_fid_style_npz_without_labels(tmp_path: Path) -> None:
    mu, sigma = np.arange(3.0, dtype=np.float32), np.eye(3, dtype=np.float32)
    np.savez(tmp_path / "ref.npz", mu=mu, sigma=sigma)
    st = load_stats(tmp_path / "ref.npz")
    np.testing.assert_array_equal(st.mu, mu)
    assert st.sigma.dtype == np.float64 and st.protocol == "unknown" and st.num_images == -1


def test_our_file_is_readable_by_pytorch_fid(tmp_path: Path) -> None:
    fid_score = pytest.importorskip("pytorch_fid.fid_score")
    st = _stats()
    path = save_stats(tmp_path / "ref.npz", st)
    m, s = fid_score.compute_statistics_of_path(str(path), None, 1, 2048, "cpu")
    np.testing.assert_array_equal(m, st.mu)
    np.testing.assert_array_equal(s, st.sigma)


def test_from_features_labels_the_statistics() -> None:
    pool = np.random.default_rng(1).normal(size=(10, 3)).astype(np.float32)
    st = ReferenceStats.from_features(Features(pool, None, "dfgan", "random (test only)"))
    assert (st.num_images, st.protocol, st.weights_id) == (10, "dfgan", "random (test only)")
    np.testing.assert_allclose(st.sigma, np.cov(pool.astype(np.float64), rowvar=False))


def test_missing_file_key_and_bad_shape_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_stats(tmp_path / "nope.npz")
    np.savez(tmp_path / "nokey.npz", mu=np.zeros(3))
    with pytest.raises(ValueError, match="lacks the key.*sigma"):
        load_stats(tmp_path / "nokey.npz")
    np.savez(tmp_path / "shape.npz", mu=np.zeros(3), sigma=np.eye(2))
    with pytest.raises(ValueError, match="shape"):
        load_stats(tmp_path / "shape.npz")


def test_pickled_content_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "obj.npz", mu=np.array([{"a": 1}], dtype=object), sigma=np.eye(1))
    with pytest.raises(ValueError, match="obj.npz"):
        load_stats(tmp_path / "obj.npz")
