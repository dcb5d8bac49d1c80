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

``inception_score`` is both a submodule and its function; the package attribute is the function
(the module stays importable as ``csagan.metrics.inception_score``).
"""

from __future__ import annotations

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
