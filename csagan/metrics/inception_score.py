"""Inception Score, Eq. (26).

    IS = exp( E_x[ D_KL( p(y|x) ‖ p(y) ) ] ),   p(y) = E_x[ p(y|x) ]                (26)

computed per split (default 10) and reported as mean ± std over the splits (population
std, ``ddof=0``, as the original code). Split ``i`` of ``N`` images is rows
``i·N//splits … (i+1)·N//splits`` (after an optional seeded shuffle), so no image is dropped.

Which classifier gives p(y|x) matters:

* the standard choice is the TF-2015 Inception's 1008-way ``logits_unbiased`` (the FC
  output without its bias; see :mod:`csagan.metrics.inception_fid`), as the original IS
  code and torch-fidelity do;
* the text-to-image papers' CUB IS (StackGAN, AttnGAN, DF-GAN, CSA-GAN Table 1) uses an
  Inception **fine-tuned on CUB** (TensorFlow). Pass such a network as ``classifier`` to
  :func:`classifier_logits`; the numbers are not comparable across classifiers.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from scipy.special import log_softmax, xlogy
from torch import Tensor, nn

from csagan.metrics.fid import ImageSource, iter_image_batches


class ISResult(NamedTuple):
    """Mean and (population) standard deviation of the per-split scores of Eq. (26)."""

    mean: float
    std: float


def inception_score(
    logits_or_probs: np.ndarray | Tensor,
    splits: int = 10,
    shuffle_seed: int | None = None,
    *,
    from_logits: bool = True,
) -> ISResult:
    """Inception Score, Eq. (26), of an (N, C) table of class logits or probabilities.

    Args:
        logits_or_probs: logits (softmaxed here, in float64) or, with ``from_logits=False``,
            probabilities whose rows are non-negative and sum to 1.
        splits: number of disjoint splits (``1 <= splits <= N``).
        shuffle_seed: shuffle the rows with ``numpy.random.default_rng(seed)`` before
            splitting (torch-fidelity shuffles; the original code does not).
        from_logits: whether the input holds logits.

    Returns:
        :class:`ISResult` ``(mean, std)``.
    """
    if isinstance(logits_or_probs, Tensor):
        logits_or_probs = logits_or_probs.detach().cpu().double().numpy()
    arr = np.asarray(logits_or_probs, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"logits_or_probs must have shape (N, C >= 2), got {arr.shape}")
    n = arr.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"splits must be between 1 and the number of images ({n}), got {splits}")
    if not np.isfinite(arr).all():
        raise ValueError("logits_or_probs contain NaN or inf")
    if from_logits:
        log_p = log_softmax(arr, axis=1)
        probs = np.exp(log_p)
    else:
        if (arr < 0).any() or not np.allclose(arr.sum(axis=1), 1.0, atol=1e-4):
            raise ValueError(
                "with from_logits=False every row must be a probability vector (non-negative, sums to 1); "
                "pass logits with from_logits=True instead"
            )
        probs = arr
    if shuffle_seed is not None:
        probs = probs[np.random.default_rng(shuffle_seed).permutation(n)]
    scores = []
    for i in range(splits):
        part = probs[i * n // splits : (i + 1) * n // splits]
        p_y = part.mean(axis=0, keepdims=True)
        # KL(p(y|x) || p(y)) with 0·log 0 = 0; p_y > 0 wherever p(y|x) > 0.
        kl = (xlogy(part, part) - xlogy(part, np.broadcast_to(p_y, part.shape))).sum(axis=1)
        scores.append(float(np.exp(kl.mean())))
    return ISResult(float(np.mean(scores)), float(np.std(scores)))


def classifier_logits(
    images_or_loader: ImageSource,
    classifier: nn.Module,
    batch_size: int = 50,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Logits of a user-supplied classifier (any module mapping images → (N, C) logits).

    The classifier must do its own pre-processing (e.g. StackGAN's CUB-fine-tuned
    Inception expects 299² inputs in [−1, 1]). Runs batched under ``inference_mode``.
    """
    if device is None:
        device = next(classifier.parameters()).device
    device = torch.device(device)
    was_training = classifier.training
    classifier.eval().to(device)
    out: list[Tensor] = []
    try:
        with torch.inference_mode():
            for batch in iter_image_batches(images_or_loader, batch_size):
                logits = classifier(batch.to(device))
                if not isinstance(logits, Tensor) or logits.ndim != 2:
                    raise ValueError("classifier must return an (N, C) logits tensor")
                out.append(logits.float().cpu())
    finally:
        classifier.train(was_training)
    if not out:
        raise ValueError("no images were given (the tensor or loader is empty)")
    return torch.cat(out).numpy()
