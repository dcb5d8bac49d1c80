"""Inception Score, Eq. (26), against hand-made probability tables and a plain loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from csagan.metrics.inception_score import classifier_logits, inception_score


def _loop_is(probs: np.ndarray, splits: int) -> tuple[float, float]:
    """exp(mean_x KL(p(y|x) || p(y))) per split, with plain Python loops."""
    n, c = probs.shape
    scores = []
    for i in range(splits):
        rows = probs[i * n // splits : (i + 1) * n // splits]
        p_y = [sum(r[k] for r in rows) / len(rows) for k in range(c)]
        kls = [sum(r[k] * math.log(r[k] / p_y[k]) for k in range(c) if r[k] > 0) for r in rows]
        scores.append(math.exp(sum(kls) / len(kls)))
    mean = sum(scores) / splits
    return mean, math.sqrt(sum((s - mean) ** 2 for s in scores) / splits)


def test_uniform_predictions_score_one() -> None:
    res = inception_score(np.full((20, 7), 1 / 7), splits=2, from_logits=False)
    assert res.mean == pytest.approx(1.0, abs=1e-12) and res.std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("k", [1, 3, 10])
def test_one_hot_over_k_classes_scores_k(k: int) -> None:
    splits = 4
    probs = np.tile(np.eye(12)[:k], (splits * 5, 1))  # every split holds each class 5 times
    res = inception_score(probs, splits=splits, from_logits=False)
    assert res.mean == pytest.approx(k, rel=1e-12) and res.std == pytest.approx(0.0, abs=1e-9)


def test_matches_plain_loop_on_random_table_with_uneven_splits() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(6, 0.3), size=23)
    mean, std = inception_score(probs, splits=5, from_logits=False)
    ref_mean, ref_std = _loop_is(probs, 5)
    assert mean == pytest.approx(ref_mean, rel=1e-10) and std == pytest.approx(ref_std, rel=1e-8)


def test_logits_are_softmaxed() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=(40, 8))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    from_logits = inception_score(torch.from_numpy(logits), splits=4)
    assert from_logits.mean == pytest.approx(_loop_is(probs, 4)[0], rel=1e-10)


def test_shuffle_seed_permutes_rows_reproducibly() -> None:
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(5), size=30)
    perm = np.random.default_rng(7).permutation(30)
    shuffled = inception_score(probs, splits=3, shuffle_seed=7, from_logits=False)
    assert shuffled.mean == pytest.approx(_loop_is(probs[perm], 3)[0], rel=1e-10)
    assert shuffled.mean != pytest.approx(inception_score(probs, splits=3, from_logits=False).mean, rel=1e-6)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="probability"):
        inception_score(np.full((4, 3), 0.5), splits=1, from_logits=False)
    with pytest.raises(ValueError, match="splits"):
        inception_score(np.zeros((4, 3)), splits=5)
    with pytest.raises(ValueError, match="shape"):
        inception_score(np.zeros(4))


def test_user_classifier_logits_are_batched_correctly() -> None:
    torch.manual_seed(0)
    clf = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    images = torch.rand(7, 3, 4, 4)
    loader = [(images[:4], "captions"), (images[4:], "captions")]
    expected = clf(images).detach().numpy()
    np.testing.assert_allclose(classifier_logits(images, clf, batch_size=3), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(classifier_logits(loader, clf, batch_size=3), expected, rtol=1e-6, atol=1e-6)


def test_package_name_is_the_function_even_after_the_submodule_was_imported() -> None:
    import importlib

    importlib.import_module("csagan.metrics.inception_score")
    from csagan.metrics import inception_score as exported

    assert callable(exported) and exported.__module__ == "csagan.metrics.inception_score"
