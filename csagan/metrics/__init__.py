"""Evaluation metrics: FID (Eq. 27) and IS (Eq. 26) with their Inception networks.

* :mod:`~csagan.metrics.inception_fid` — :class:`FIDInceptionV3` (pytorch-fid-compatible
  TF-2015 Inception, or DF-GAN's non-standard torchvision network with ``protocol="dfgan"``).
* :mod:`~csagan.metrics.fid` — :func:`frechet_distance`, :func:`compute_statistics`,
  :func:`extract_features`, :func:`fid_from_features`.
* :mod:`~csagan.metrics.inception_score` — :func:`inception_score`, :func:`classifier_logits`.
* :mod:`~csagan.metrics.stats` — ``.npz`` reference statistics (:func:`save_stats`,
  :func:`load_stats`).
* :mod:`~csagan.metrics.reference` — reference statistics of a dataset split or an image
  folder (:func:`split_statistics`, :func:`folder_statistics`; ``csagan fid-stats``).
* :mod:`~csagan.metrics.rprecision` — R-precision with DAMSM encoders.
* :mod:`~csagan.metrics.retrieval` — image → caption retrieval on dataset items (DAMSM pretraining's score).

Names are imported lazily so that ``import csagan.metrics`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "FIDInceptionV3": "inception_fid",
    "InceptionOutputs": "inception_fid",
    "RANDOM_WEIGHTS_ID": "inception_fid",
    "FID_WEIGHTS_FILENAME": "inception_fid",
    "FID_WEIGHTS_URL": "inception_fid",
    "default_weights_locations": "inception_fid",
    "resolve_weights_path": "inception_fid",
    "published_hash_prefix": "inception_fid",
    "FrechetResult": "fid",
    "FIDReport": "fid",
    "Features": "fid",
    "frechet_distance": "fid",
    "compute_statistics": "fid",
    "extract_features": "fid",
    "fid_from_features": "fid",
    "ISResult": "inception_score",
    "inception_score": "inception_score",
    "classifier_logits": "inception_score",
    "ReferenceStats": "stats",
    "save_stats": "stats",
    "load_stats": "stats",
    "split_statistics": "reference",
    "folder_statistics": "reference",
    "quantize_images": "reference",
}

__all__ = [
    "FID_WEIGHTS_FILENAME",
    "FID_WEIGHTS_URL",
    "RANDOM_WEIGHTS_ID",
    "FIDInceptionV3",
    "FIDReport",
    "Features",
    "FrechetResult",
    "ISResult",
    "InceptionOutputs",
    "ReferenceStats",
    "classifier_logits",
    "compute_statistics",
    "default_weights_locations",
    "extract_features",
    "fid_from_features",
    "folder_statistics",
    "frechet_distance",
    "inception_score",
    "load_stats",
    "published_hash_prefix",
    "quantize_images",
    "resolve_weights_path",
    "save_stats",
    "split_statistics",
]

if TYPE_CHECKING:
    from csagan.metrics.fid import (
        Features,
        FIDReport,
        FrechetResult,
        compute_statistics,
        extract_features,
        fid_from_features,
        frechet_distance,
    )
    from csagan.metrics.inception_fid import (
        FID_WEIGHTS_FILENAME,
        FID_WEIGHTS_URL,
        RANDOM_WEIGHTS_ID,
        FIDInceptionV3,
        InceptionOutputs,
        default_weights_locations,
        published_hash_prefix,
        resolve_weights_path,
    )
    from csagan.metrics.inception_score import ISResult, classifier_logits, inception_score
    from csagan.metrics.reference import folder_statistics, quantize_images, split_statistics
    from csagan.metrics.stats import ReferenceStats, load_stats, save_stats


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'csagan.metrics' has no attribute {name!r}")
    return getattr(importlib.import_module(f"csagan.metrics.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


# ``inception_score`` is both a submodule and a function of it. Importing the submodule (which
# other modules do) makes the package attribute the *module*, so the lazy ``__getattr__`` above is
# never consulted for it; binding the function eagerly keeps ``csagan.metrics.inception_score`` the
# function (the submodule stays importable as ``csagan.metrics.inception_score`` via sys.modules).
from csagan.metrics.inception_score import inception_score  # noqa: E402
