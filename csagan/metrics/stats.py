"""Reference statistics (μ, Σ) of Eq. (27) stored as ``.npz`` files.

The file holds the keys ``mu`` (D,) and ``sigma`` (D, D) — the layout pytorch-fid writes
(``--save-stats``) and reads, and the one of DF-GAN's released reference files — plus, when
written by this module, the labels ``num_images``, ``protocol`` and ``weights_id`` (plain
numeric/unicode arrays, so no pickling is needed to read them; pytorch-fid ignores them).
Files are always read with ``allow_pickle=False``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from csagan.metrics.fid import UNKNOWN, ReferenceStats


def save_stats(path: str | os.PathLike[str], stats: ReferenceStats) -> Path:
    """Write ``stats`` to ``path`` (``.npz`` is appended by NumPy if missing); return the path."""
    _validate(stats.mu, stats.sigma, Path(path))
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        mu=np.asarray(stats.mu, dtype=np.float64),
        sigma=np.asarray(stats.sigma, dtype=np.float64),
        num_images=np.int64(stats.num_images),
        protocol=np.str_(stats.protocol),
        weights_id=np.str_(stats.weights_id),
    )
    return path


def load_stats(path: str | os.PathLike[str]) -> ReferenceStats:
    """Read an ``.npz`` with ``mu``/``sigma`` (ours, pytorch-fid's or DF-GAN's).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not a readable npz, keys missing, or shapes inconsistent.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"reference statistics file {path} not found; create it with save_stats() (or pytorch-fid "
            "--save-stats) from the reference images' Inception features"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
            missing = {"mu", "sigma"} - keys
            if missing:
                raise ValueError(
                    f"{path} lacks the key(s) {sorted(missing)} (it has {sorted(keys)}); reference "
                    "statistics need 'mu' (D,) and 'sigma' (D, D)"
                )
            mu = np.asarray(data["mu"], dtype=np.float64)
            sigma = np.asarray(data["sigma"], dtype=np.float64)
            num = int(data["num_images"]) if "num_images" in keys else -1
            protocol = str(data["protocol"]) if "protocol" in keys else UNKNOWN
            weights_id = str(data["weights_id"]) if "weights_id" in keys else UNKNOWN
    except ValueError as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"{path} is not a plain .npz of arrays ({err})") from err
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"{path} is truncated or corrupt ({type(err).__name__}); recreate it with `csagan fid-stats --out {path}`"
        ) from None
    _validate(mu, sigma, path)
    return ReferenceStats(mu, sigma, num, protocol, weights_id)


def _validate(mu: np.ndarray, sigma: np.ndarray, path: Path) -> None:
    mu = np.asarray(mu)
    sigma = np.asarray(sigma)
    if mu.ndim != 1:
        raise ValueError(f"{path}: 'mu' must be a vector (D,), got shape {mu.shape}")
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{path}: 'sigma' must have shape {(mu.shape[0],) * 2} to match 'mu', got {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"{path}: 'mu'/'sigma' contain NaN or inf")
