"""Tests of csagan.metrics.rprecision (AttnGAN/DM-GAN R-precision)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from csagan.metrics.rprecision import encode_pairs, r_precision, r_precision_from_codes, r_precision_from_scores


class _TableImageEncoder(nn.Module):
    """Image i (every pixel = i / 1000) -> code table[i]; regions are unused."""

    table: Tensor

    def __init__(self, table: Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        idx = (images[:, 0, 0, 0] * 1000).round().long()
        return images, self.table[idx]


class _TableTextEncoder(nn.Module):
    """Caption whose first word is i + 1 -> code table[i]."""

    table: Tensor

    def __init__(self, table: Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table)

    def forward(self, captions: Tensor, cap_lens: Tensor) -> tuple[Tensor, Tensor]:
        return captions, self.table[captions[:, 0] - 1]


def _inputs(n: int) -> tuple[Tensor, Tensor, Tensor]:
    images = (torch.arange(n, dtype=torch.float32) / 1000).view(n, 1, 1, 1).expand(n, 3, 4, 4).contiguous()
    captions = torch.zeros(n, 5, dtype=torch.long)
    captions[:, 0] = torch.arange(1, n + 1)
    return images, captions, torch.ones(n, dtype=torch.long)


def test_matching_codes_give_r_precision_one() -> None:
    table = torch.randn(150, 32, generator=torch.Generator().manual_seed(1))
    images, captions, lens = _inputs(150)
    res = r_precision(_TableImageEncoder(table), _TableTextEncoder(table), images, captions, lens, rounds=3)
    assert res.mean == 1.0 and res.std == 0.0 and res.per_round == (1.0, 1.0, 1.0)


def test_random_codes_give_chance_level() -> None:
    g = torch.Generator().manual_seed(2)
    img, sent = torch.randn(600, 16, generator=g), torch.randn(600, 16, generator=g)
    res = r_precision_from_codes(img, sent, n_candidates=100, rounds=10, seed=0)
    # 6000 trials with p = 0.01: std of the mean ~0.0013, so ±0.008 is > 6 sigma.
    assert abs(res.mean - 0.01) < 0.008
    assert res.chance == pytest.approx(0.01)


def test_all_candidates_equals_brute_force_top1() -> None:
    # With n_candidates = N every other caption competes: no randomness, so R-precision is the
    # top-1 image->caption retrieval accuracy, computed here with an explicit loop in NumPy.
    g = torch.Generator().manual_seed(3)
    sent = torch.randn(40, 8, generator=g)
    img = sent + 1.2 * torch.randn(40, 8, generator=g)
    a = img.numpy().astype(np.float64)
    b = sent.numpy().astype(np.float64)
    hits = 0
    for i in range(40):
        cos = [a[i] @ b[j] / (np.linalg.norm(a[i]) * np.linalg.norm(b[j])) for j in range(40)]
        hits += all(cos[i] > cos[j] for j in range(40) if j != i)
    expected = hits / 40
    assert 0.1 < expected < 0.9  # the case is informative
    res = r_precision_from_codes(img, sent, n_candidates=40, rounds=2, seed=5)
    assert res.mean == pytest.approx(expected) and res.std == 0.0


def test_ties_get_fractional_credit() -> None:
    # Captions 0 and 1 have identical codes: images 0 and 1 each tie with one competitor (1/2),
    # image 2 is a clean hit, so R-precision = (0.5 + 0.5 + 1) / 3.
    sent = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    res = r_precision_from_codes(sent.clone(), sent, n_candidates=3, rounds=1)
    assert res.mean == pytest.approx(2.0 / 3.0)


def test_rounds_are_reported_and_seeded() -> None:
    g = torch.Generator().manual_seed(4)
    sent = torch.randn(200, 8, generator=g)
    img = sent + 1.5 * torch.randn(200, 8, generator=g)
    a = r_precision_from_codes(img, sent, n_candidates=20, rounds=5, seed=7)
    b = r_precision_from_codes(img, sent, n_candidates=20, rounds=5, seed=7)
    c = r_precision_from_codes(img, sent, n_candidates=20, rounds=5, seed=8)
    assert a == b and a.per_round != c.per_round
    assert len(a.per_round) == 5
    assert a.mean == pytest.approx(np.mean(a.per_round)) and a.std == pytest.approx(np.std(a.per_round))
    assert a.to_dict()["n_candidates"] == 20 and "R-precision" in a.format()


def test_chunked_draws_match_in_distribution() -> None:
    # A tiny memory bound forces one row per chunk; the result must stay a valid R-precision.
    table = torch.randn(120, 8, generator=torch.Generator().manual_seed(6))
    res = r_precision_from_codes(table, table.clone(), n_candidates=100, rounds=2, max_elements=10)
    assert res.mean == 1.0


def test_too_few_images_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="n_candidates=100 but only 50"):
        r_precision_from_codes(torch.randn(50, 4), torch.randn(50, 4))
    with pytest.raises(ValueError, match="same shape"):
        r_precision_from_codes(torch.randn(50, 4), torch.randn(50, 5), n_candidates=10)


def test_real_damsm_encoders_run_and_keep_their_modes() -> None:
    from csagan.damsm_encoders import SmallCNNEncoder
    from csagan.text import RNNEncoder

    with torch.random.fork_rng():
        torch.manual_seed(0)
        image_encoder = SmallCNNEncoder(image_size=32, ndf=8, emb_dim=16)
        text_encoder = RNNEncoder(n_words=30, emb_dim=8, hidden=16)
    image_encoder.train()
    text_encoder.train()
    g = torch.Generator().manual_seed(1)
    images = torch.rand(24, 3, 32, 32, generator=g) * 2 - 1
    captions = torch.randint(1, 30, (24, 6), generator=g)
    lens = torch.randint(1, 7, (24,), generator=g)
    img_codes, sent_codes = encode_pairs(image_encoder, text_encoder, images, captions, lens, batch_size=10)
    assert img_codes.shape == (24, 16) and sent_codes.shape == (24, 16)
    assert image_encoder.training and text_encoder.training
    res = r_precision(image_encoder, text_encoder, images, captions, lens, n_candidates=10, rounds=2)
    assert 0.0 <= res.mean <= 1.0 and res.n_images == 24


def test_score_matrix_gives_the_same_draws_as_codes() -> None:
    # r_precision_from_scores on the explicit cosine matrix = r_precision_from_codes (same seed, same loop).
    g = torch.Generator().manual_seed(9)
    sent = torch.randn(30, 6, generator=g)
    img = sent + 1.0 * torch.randn(30, 6, generator=g)
    cos = (img / img.norm(dim=1, keepdim=True)) @ (sent / sent.norm(dim=1, keepdim=True)).T
    a = r_precision_from_codes(img, sent, n_candidates=7, rounds=4, seed=2)
    b = r_precision_from_scores(cos, n_candidates=7, rounds=4, seed=2)
    assert a.per_round == pytest.approx(b.per_round) and 0.0 < a.mean < 1.0
    with pytest.raises(ValueError, match="square"):
        r_precision_from_scores(torch.zeros(3, 4), n_candidates=2)


def test_ties_can_count_as_misses() -> None:
    sent = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    res = r_precision_from_codes(sent.clone(), sent, n_candidates=3, rounds=1, ties="miss")
    assert res.mean == pytest.approx(1.0 / 3.0)  # only image 2 is a clean hit
    with pytest.raises(ValueError, match="ties"):
        r_precision_from_codes(sent.clone(), sent, n_candidates=3, ties="half")  # type: ignore[arg-type]


def test_pretrain_retrieval_uses_this_module() -> None:
    # csagan.metrics.retrieval.retrieval_accuracy's R-precision is one round of r_precision_from_codes
    # with ties as misses, on the codes of the queried items.
    from csagan.data.datasets import TextImageItem
    from csagan.metrics.retrieval import retrieval_accuracy

    g = torch.Generator().manual_seed(11)
    table = torch.randn(40, 8, generator=g)
    noisy = table + 1.3 * torch.randn(40, 8, generator=g)
    images, captions, _ = _inputs(40)
    items = [TextImageItem(images[i], captions[i], 1, 0, str(i), 0, i) for i in range(40)]
    acc = retrieval_accuracy((_TableTextEncoder(table), _TableImageEncoder(noisy)), items, n_candidates=10,
                             n_queries=None, seed=4)  # fmt: skip
    expected = r_precision_from_codes(noisy, table, n_candidates=10, rounds=1, seed=4, ties="miss").mean
    assert acc["r_precision"] == pytest.approx(expected) and 0.0 < expected < 1.0
