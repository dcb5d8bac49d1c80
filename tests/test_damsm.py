"""Tests for csagan.damsm: attention (Eqs. 5-7), scores and losses (Eqs. 8-12), image encoders."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models import inception_v3

from csagan.damsm import (
    DAMSM,
    DAMSMConfig,
    DAMSMLosses,
    cosine_similarity,
    damsm_loss,
    func_attention,
    matching_losses,
    pairwise_attention,
    posterior,
    sentence_similarity_matrix,
    word_level_score,
    word_similarity_matrix,
)
from csagan.damsm_encoders import INCEPTION_LAYERS, InceptionEncoder, SmallCNNEncoder, load_attngan_image_encoder
from csagan.text import RNNEncoder

B, D, T, N = 3, 5, 4, 6
LENS = [4, 2, 3]

# ----------------------------------------------------------------------------- plain-Python references


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def _ref_attention(
    e: list[list[float]], v: list[list[float]], n_words: int, gamma1: float
) -> tuple[list[list[float]], list[list[float]]]:
    """e: D×T word features, v: D×n regions. Returns (contexts[t][d], alpha[t][r]) for t < n_words."""
    dim, n = len(v), len(v[0])
    s = [[sum(e[d][t] * v[d][r] for d in range(dim)) for r in range(n)] for t in range(n_words)]  # (5)
    s_bar = [
        [math.exp(s[t][r]) / sum(math.exp(s[k][r]) for k in range(n_words)) for r in range(n)]
        for t in range(n_words)
    ]  # (6)
    alpha = [
        [math.exp(gamma1 * s_bar[t][r]) / sum(math.exp(gamma1 * x) for x in s_bar[t]) for r in range(n)]
        for t in range(n_words)
    ]  # (7)
    ctx = [[sum(alpha[t][r] * v[d][r] for r in range(n)) for d in range(dim)] for t in range(n_words)]
    return ctx, alpha


def _ref_word_scores(
    words: torch.Tensor, regions: torch.Tensor, lens: list[int], g1: float, g2: float, mode: str
) -> list[list[float]]:
    """S[j][i] = R(Q_j, D_i) (image j, caption i), Eq. (8)."""
    w, v = words.tolist(), regions.flatten(2).tolist()
    out = []
    for j in range(len(v)):
        row = []
        for i in range(len(w)):
            ctx, _ = _ref_attention(w[i], v[j], lens[i], g1)
            rel = [_cos(ctx[t], [w[i][d][t] for d in range(len(w[i]))]) for t in range(lens[i])]
            score = math.log(sum(math.exp(g2 * r) for r in rel))
            row.append(score / g2 if mode == "paper" else score)
        out.append(row)
    return out


def _ref_losses(
    scores: list[list[float]], g3: float, classes: list[int] | None = None
) -> tuple[float, float]:
    """Mean over the batch of -log P(D_i|Q_i) and -log P(Q_i|D_i), Eqs. (9)-(11), masked pairs removed."""
    b = len(scores)

    def keep(j: int, i: int) -> bool:
        return classes is None or i == j or classes[i] != classes[j]

    l1 = l2 = 0.0
    for i in range(b):
        den1 = sum(math.exp(g3 * scores[i][k]) for k in range(b) if keep(i, k))
        den2 = sum(math.exp(g3 * scores[k][i]) for k in range(b) if keep(k, i))
        l1 -= math.log(math.exp(g3 * scores[i][i]) / den1)
        l2 -= math.log(math.exp(g3 * scores[i][i]) / den2)
    return l1 / b, l2 / b


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    words = torch.randn(B, D, T, generator=gen, dtype=torch.float64)
    regions = torch.randn(B, D, 2, 3, generator=gen, dtype=torch.float64)  # n = 6 regions
    img_code = torch.randn(B, D, generator=gen, dtype=torch.float64)
    sent = torch.randn(B, D, generator=gen, dtype=torch.float64)
    return words, regions, img_code, sent, torch.tensor(LENS)


# ----------------------------------------------------------------------------- attention and scores


def test_func_attention_matches_loop(batch: tuple[torch.Tensor, ...]) -> None:
    words, regions, *_ = batch
    ctx, attn = func_attention(words, regions, gamma1=4.0)
    assert ctx.shape == (B, D, T) and attn.shape == (B, T, N)
    for b in range(B):
        ref_ctx, ref_alpha = _ref_attention(words[b].tolist(), regions[b].flatten(1).tolist(), T, 4.0)
        torch.testing.assert_close(ctx[b].T, torch.tensor(ref_ctx, dtype=torch.float64))
        torch.testing.assert_close(attn[b], torch.tensor(ref_alpha, dtype=torch.float64))


def test_func_attention_word_mask_excludes_padding_from_softmax(batch: tuple[torch.Tensor, ...]) -> None:
    words, regions, *_ = batch
    mask = torch.arange(T)[None] < torch.tensor(LENS)[:, None]
    ctx, attn = func_attention(words, regions, 5.0, word_mask=mask)
    for b, n in enumerate(LENS):
        ref_ctx, ref_alpha = _ref_attention(words[b].tolist(), regions[b].flatten(1).tolist(), n, 5.0)
        torch.testing.assert_close(ctx[b, :, :n].T, torch.tensor(ref_ctx, dtype=torch.float64))
        torch.testing.assert_close(attn[b, :n], torch.tensor(ref_alpha, dtype=torch.float64))


@pytest.mark.parametrize("mode", ["code", "paper"])
def test_word_similarity_matrix_matches_loop(batch: tuple[torch.Tensor, ...], mode: str) -> None:
    words, regions, *_, lens = batch
    got = word_similarity_matrix(words, regions, lens, 4.0, 5.0, mode)  # type: ignore[arg-type]
    ref = torch.tensor(_ref_word_scores(words, regions, LENS, 4.0, 5.0, mode), dtype=torch.float64)
    torch.testing.assert_close(got, ref)


def test_word_similarity_matrix_values_and_gradients_match_explicit_contexts() -> None:
    """Fewer regions than dimensions (n < D, the 64 px training case): the Gram-matrix form of the
    relevance equals forming the contexts c_t = Σ α v explicitly, in value and in both gradients."""
    gen = torch.Generator().manual_seed(3)
    words = torch.randn(4, 16, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    regions = torch.randn(4, 16, 2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    lens = torch.tensor([5, 2, 4, 1])
    got = word_similarity_matrix(words, regions, lens, 4.0, 5.0)
    mask = torch.arange(5)[None] < lens[:, None]
    ctx, _ = pairwise_attention(words, regions, 4.0, mask)  # [Bc, Bi, D, T]
    rel = cosine_similarity(ctx, words.unsqueeze(1), dim=2)
    ref = torch.logsumexp((5.0 * rel).masked_fill(~mask.unsqueeze(1), float("-inf")), dim=-1).T
    torch.testing.assert_close(got, ref)
    weights = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    g_got = torch.autograd.grad((got * weights).sum(), (words, regions))
    g_ref = torch.autograd.grad((ref * weights).sum(), (words, regions))
    for a, b in zip(g_got, g_ref, strict=True):
        torch.testing.assert_close(a, b)


def test_word_scores_ignore_padding_content(batch: tuple[torch.Tensor, ...]) -> None:
    words, regions, *_, lens = batch
    changed = words.clone()
    changed[1, :, 2:] = 100.0  # caption 1 has 2 words; what follows must not matter
    torch.testing.assert_close(
        word_similarity_matrix(words, regions, lens, 4.0, 5.0),
        word_similarity_matrix(changed, regions, lens, 4.0, 5.0),
    )


def test_paper_score_tends_to_max_relevance() -> None:
    gen = torch.Generator().manual_seed(1)
    rel = torch.rand(4, 6, generator=gen, dtype=torch.float64) * 2 - 1
    mask = torch.arange(6)[None] < torch.tensor([6, 3, 1, 4])[:, None]
    got = word_level_score(rel, mask, gamma2=1e3, mode="paper")
    ref = torch.stack([rel[b, : int(mask[b].sum())].max() for b in range(4)])
    assert torch.allclose(got, ref, atol=1e-2)


def test_code_score_is_gamma2_times_paper_score() -> None:
    gen = torch.Generator().manual_seed(2)
    rel = torch.rand(3, 5, generator=gen, dtype=torch.float64) * 2 - 1
    mask = torch.arange(5)[None] < torch.tensor([5, 2, 4])[:, None]
    code = word_level_score(rel, mask, 5.0, "code")
    paper = word_level_score(rel, mask, 5.0, "paper")
    torch.testing.assert_close(code, 5.0 * paper)


def test_sentence_similarity_is_cosine(batch: tuple[torch.Tensor, ...]) -> None:
    _, _, img_code, sent, _ = batch
    got = sentence_similarity_matrix(img_code, sent)
    for j in range(B):
        for i in range(B):
            assert got[j, i].item() == pytest.approx(_cos(img_code[j].tolist(), sent[i].tolist()))


# ----------------------------------------------------------------------------- posterior and losses


def test_posterior_rows_sum_to_one_and_masked_entries_vanish() -> None:
    scores = torch.randn(4, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    p = posterior(scores, 10.0, class_ids=[0, 1, 0, 0])
    torch.testing.assert_close(p.sum(dim=1), torch.ones(4, dtype=torch.float64))
    assert p[0, 2] == 0 and p[3, 0] == 0 and p[0, 1] > 0
    assert torch.all(torch.diagonal(p) > 0)


def test_damsm_losses_match_loop(batch: tuple[torch.Tensor, ...]) -> None:
    words, regions, img_code, sent, lens = batch
    cfg = DAMSMConfig(gamma1=4.0, gamma2=5.0, gamma3=10.0)
    losses = damsm_loss(regions, img_code, words, sent, lens, config=cfg)
    w_ref = _ref_losses(_ref_word_scores(words, regions, LENS, 4.0, 5.0, "code"), 10.0)
    sent_scores = [[_cos(img_code[j].tolist(), sent[i].tolist()) for i in range(B)] for j in range(B)]
    s_ref = _ref_losses(sent_scores, 10.0)
    got = [x.item() for x in losses]
    assert got == pytest.approx([*w_ref, *s_ref], rel=1e-9)
    assert losses.total.item() == pytest.approx(sum(w_ref) + sum(s_ref), rel=1e-9)


def test_same_class_masking_matches_hand_computation(batch: tuple[torch.Tensor, ...]) -> None:
    words, regions, img_code, sent, lens = batch
    classes = [7, 3, 7]
    cfg = DAMSMConfig(gamma1=5.0)
    masked = damsm_loss(regions, img_code, words, sent, lens, class_ids=torch.tensor(classes), config=cfg)
    plain = damsm_loss(regions, img_code, words, sent, lens, config=cfg)
    w_ref = _ref_losses(_ref_word_scores(words, regions, LENS, 5.0, 5.0, "code"), 10.0, classes)
    assert [masked.w1.item(), masked.w2.item()] == pytest.approx(list(w_ref), rel=1e-9)
    assert masked.w1.item() != pytest.approx(plain.w1.item())


def test_sum_reduction_is_batch_times_mean(batch: tuple[torch.Tensor, ...]) -> None:
    words, regions, img_code, sent, lens = batch
    mean = damsm_loss(regions, img_code, words, sent, lens)
    total = damsm_loss(regions, img_code, words, sent, lens, config=DAMSMConfig(reduction="sum"))
    torch.testing.assert_close(total.total, B * mean.total)


def test_damsm_loss_is_float32_under_bf16_autocast(batch: tuple[torch.Tensor, ...]) -> None:
    words, regions, img_code, sent, lens = (t.to(torch.bfloat16) if t.is_floating_point() else t for t in batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = damsm_loss(regions, img_code, words, sent, lens)
    ref = damsm_loss(regions.float(), img_code.float(), words.float(), sent.float(), lens)
    assert all(x.dtype == torch.float32 for x in low)
    torch.testing.assert_close(torch.stack(list(low)), torch.stack(list(ref)))


def test_matching_losses_diagonal_scores_give_small_loss() -> None:
    scores = torch.eye(3, dtype=torch.float64)
    l1, l2 = matching_losses(scores, 10.0)
    expected = -math.log(math.exp(10) / (math.exp(10) + 2))
    assert l1.item() == pytest.approx(expected) and l2.item() == pytest.approx(expected)


def test_config_and_inputs_are_validated(batch: tuple[torch.Tensor, ...]) -> None:
    words, regions, img_code, sent, lens = batch
    with pytest.raises(ValueError, match="gamma1"):
        DAMSMConfig(gamma1=0.0)
    with pytest.raises(ValueError, match="word_score_mode"):
        DAMSMConfig(word_score_mode="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch size"):
        damsm_loss(regions[:2], img_code, words, sent, lens)
    with pytest.raises(ValueError, match="cap_lens"):
        damsm_loss(regions, img_code, words, sent, torch.tensor([5, 1, 1]))
    with pytest.raises(ValueError, match="class_ids has 2"):
        damsm_loss(regions, img_code, words, sent, lens, class_ids=[1, 2])


# ----------------------------------------------------------------------------- image encoders


@pytest.fixture(scope="module")
def inception() -> InceptionEncoder:
    return InceptionEncoder()


def test_inception_encoder_shapes_at_64(inception: InceptionEncoder) -> None:
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4)) * 2 - 1
    with torch.no_grad():
        regions, code = inception(x)
    assert regions.shape == (1, 256, 17, 17) and code.shape == (1, 256)


def test_inception_at_299_is_torchvision_inception_plus_projections(inception: InceptionEncoder) -> None:
    tv = inception_v3(weights=None, aux_logits=False, init_weights=False)
    tv.load_state_dict(
        {k: v for k, v in inception.state_dict().items() if not k.startswith("emb_")}, strict=False
    )
    tv.fc = nn.Identity()  # type: ignore[assignment]
    tv.eval()
    x = torch.rand(1, 3, 299, 299, generator=torch.Generator().manual_seed(5)) * 2 - 1
    with torch.no_grad():
        regions, code = inception(x)
        ref_code = inception.emb_cnn_code(tv(x))
    assert regions.shape == (1, 256, 17, 17) and code.shape == (1, 256)
    torch.testing.assert_close(code, ref_code)


def test_inception_state_dict_has_attngan_layout(inception: InceptionEncoder, tmp_path: Path) -> None:
    keys = set(inception.state_dict())
    assert {"Conv2d_1a_3x3.conv.weight", "Mixed_5b.branch1x1.conv.weight", "Mixed_7c.branch_pool.bn.running_var",
            "emb_features.weight", "emb_cnn_code.weight", "emb_cnn_code.bias"} <= keys
    assert {k.split(".")[0] for k in keys} == set(INCEPTION_LAYERS) | {"emb_features", "emb_cnn_code"}
    assert inception.emb_features.weight.shape == (256, 768, 1, 1)
    path = tmp_path / "image_encoder200.pth"
    torch.save(inception.state_dict(), path)
    loaded = load_attngan_image_encoder(path)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(6)) * 2 - 1
    with torch.no_grad():
        for a, b in zip(inception(x), loaded(x), strict=True):
            torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_inception_loads_files_without_batchnorm_counters(inception: InceptionEncoder, tmp_path: Path) -> None:
    state = {k: v for k, v in inception.state_dict().items() if "num_batches_tracked" not in k}
    torch.save(state, tmp_path / "old.pth")
    loaded = load_attngan_image_encoder(tmp_path / "old.pth")
    torch.testing.assert_close(loaded.emb_cnn_code.weight, inception.emb_cnn_code.weight)


def test_from_imagenet_reads_torchvision_state_dict(tmp_path: Path) -> None:
    tv = inception_v3(weights=None, aux_logits=True, init_weights=False)
    path = tmp_path / "inception_v3_google-0cc3c7bd.pth"
    torch.save(tv.state_dict(), path)  # includes fc.* and AuxLogits.*, which are skipped
    enc = InceptionEncoder.from_imagenet(path)
    ours, ref = enc.state_dict(), tv.state_dict()
    backbone = [k for k in ours if not k.startswith("emb_")]
    assert len(backbone) > 400
    for key in backbone:
        torch.testing.assert_close(ours[key], ref[key], atol=0, rtol=0)


def test_missing_weight_files_raise_helpful_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="inception_v3_google-0cc3c7bd.pth.*checkpoints"):
        InceptionEncoder.from_imagenet(tmp_path / "none.pth")
    with pytest.raises(FileNotFoundError, match="image_encoder200.pth"):
        load_attngan_image_encoder(tmp_path / "none.pth")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a torchvision Inception-v3"):
        InceptionEncoder.from_imagenet(tmp_path / "bad.pth")


def test_inception_gradients_reach_projections_and_images_not_backbone(
    inception: InceptionEncoder,
) -> None:
    inception.train()
    try:
        assert inception.emb_features.training
        assert all(not m.training for m in inception.backbone_modules())
        x = (torch.rand(1, 3, 64, 64) * 2 - 1).requires_grad_(True)
        regions, code = inception(x)
        (regions.sum() + code.sum()).backward()
        assert inception.emb_features.weight.grad is not None
        assert inception.emb_cnn_code.weight.grad is not None
        assert all(p.grad is None and not p.requires_grad for p in inception.backbone_parameters())
        assert x.grad is not None and x.grad.abs().sum() > 0
    finally:
        inception.eval()
        inception.zero_grad(set_to_none=True)


def test_small_cnn_encoder_shapes_and_gradients() -> None:
    enc = SmallCNNEncoder(image_size=64, ndf=8)
    regions, code = enc(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert regions.shape == (2, 256, 8, 8) and code.shape == (2, 256)
    (regions.mean() + code.mean()).backward()
    assert all(p.grad is not None for p in enc.parameters())
    regions, code = enc(torch.rand(2, 3, 32, 32))  # resized to image_size
    assert regions.shape == (2, 256, 8, 8)
    with pytest.raises(ValueError, match="multiple of 16"):
        SmallCNNEncoder(image_size=40)


# ----------------------------------------------------------------------------- DAMSM bundle


def _tiny_damsm() -> tuple[DAMSM, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(8)
    model = DAMSM(RNNEncoder(20, emb_dim=8, hidden=16), SmallCNNEncoder(32, ndf=4, emb_dim=16))
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    lens = torch.tensor([5, 3, 4, 2])
    caps = torch.zeros(4, 5, dtype=torch.long)
    for b, n in enumerate(lens.tolist()):
        caps[b, :n] = torch.randint(1, 20, (n,))
    return model, images, caps, lens


def test_damsm_module_equals_damsm_loss_on_encodings() -> None:
    model, images, caps, lens = _tiny_damsm()
    model.eval()
    losses = model(images, caps, lens, class_ids=[1, 2, 1, 3])
    assert isinstance(losses, DAMSMLosses)
    ref = damsm_loss(*model.encode(images, caps, lens), lens, class_ids=[1, 2, 1, 3])
    torch.testing.assert_close(torch.stack(list(losses)), torch.stack(list(ref)))
    maps = model.attention_maps(images, caps, lens)
    assert maps.shape == (4, 5, 4, 4)
    sums = maps.flatten(2).sum(-1)
    torch.testing.assert_close(sums, (torch.arange(5)[None] < lens[:, None]).float())


def test_damsm_training_steps_reduce_loss() -> None:
    model, images, caps, lens = _tiny_damsm()
    model.train()
    model.text_encoder.drop.p = 0.0
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    first = model(images, caps, lens).total.item()
    for _ in range(20):
        opt.zero_grad()
        model(images, caps, lens).total.backward()
        opt.step()
    assert model(images, caps, lens).total.item() < 0.5 * first
