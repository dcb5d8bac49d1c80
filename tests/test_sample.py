"""Tests of csagan.sample: truncated noise, caption tokenisation, sampling and the caption grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats

from csagan.config import get_model_config
from csagan.data.errors import CaptionError, OutOfVocabularyError
from csagan.data.text import Vocabulary
from csagan.models import Generator
from csagan.sample import (
    SampleResult,
    caption_grid_image,
    encode_captions,
    interpolate_captions,
    mask_centre_border,
    sample_images,
    save_caption_grid,
    truncated_noise,
)
from csagan.text import RNNEncoder

VOCAB = ["<end>", "a", "bird", "red", "blue", "small", "with", "wings", "black"]
TINY = {"image_size": 32, "nf": 4, "d_nf": 4, "g0_nf": 2, "mlp_hidden": 8, "mask_hidden": 4}


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def models() -> tuple[Generator, RNNEncoder]:
    torch.manual_seed(0)
    gen = Generator(get_model_config("csagan", **TINY))
    text = RNNEncoder(len(VOCAB), emb_dim=8, hidden=256)
    return gen, text


# ----------------------------------------------------------------------------- noise


def test_truncated_noise_bounds() -> None:
    z = truncated_noise(4000, 16, 0.88, torch.Generator().manual_seed(0))
    assert z.shape == (4000, 16)
    assert float(z.abs().max()) <= 2 * 0.88 + 1e-6
    assert float(z.abs().max()) > 2 * 0.88 * 0.95  # the tails are reached, not clipped early


def test_truncated_noise_matches_scipy_truncnorm() -> None:
    z = truncated_noise(20000, 1, 1.0, torch.Generator().manual_seed(1)).flatten().double().numpy()
    result = stats.kstest(z, stats.truncnorm(-2, 2).cdf)
    assert result.pvalue > 1e-3
    # and it is not the plain normal
    assert stats.kstest(z, stats.norm.cdf).pvalue < 1e-6


def test_plain_noise_when_truncation_none() -> None:
    z = truncated_noise(20000, 1, None, torch.Generator().manual_seed(2)).flatten().double().numpy()
    assert stats.kstest(z, stats.norm.cdf).pvalue > 1e-3
    assert abs(z).max() > 2.0


def test_bad_truncation_is_refused() -> None:
    with pytest.raises(ValueError, match="truncation"):
        truncated_noise(2, 2, 0.0)


# ----------------------------------------------------------------------------- captions


def test_encode_captions_follows_attngan_tokenisation() -> None:
    ids, lens = encode_captions(["A small, RED bird!", "blue wings"], VOCAB)
    assert lens.tolist() == [4, 2]
    assert ids[0, :4].tolist() == [1, 5, 3, 2]
    assert ids[1, :2].tolist() == [4, 7]
    assert int(ids[0, 4:].abs().sum()) == 0 and ids.shape[1] == 18


def test_unknown_words_are_dropped_with_warning() -> None:
    with pytest.warns(UserWarning, match="zebra"):
        ids, lens = encode_captions(["a zebra bird"], VOCAB)
    assert lens.tolist() == [2]
    assert ids[0, :2].tolist() == [1, 2]


def test_all_oov_caption_error_lists_words_and_vocabulary() -> None:
    with pytest.raises(OutOfVocabularyError, match=r"(?s)unknown: green, parrot.*vocabulary used: a word list"):
        encode_captions(["green parrot"], VOCAB)


def test_empty_caption_error_names_vocabulary() -> None:
    with pytest.raises(CaptionError, match="empty.*vocabulary used"):
        encode_captions(["  ,!  "], VOCAB)


def test_vocabulary_object_is_accepted() -> None:
    vocab = Vocabulary(dict(enumerate(VOCAB)), {w: i for i, w in enumerate(VOCAB)})
    ids_a, _ = encode_captions(["red bird"], vocab)
    ids_b, _ = encode_captions(["red bird"], VOCAB)
    assert torch.equal(ids_a, ids_b)


# ----------------------------------------------------------------------------- sampling


def test_sample_shapes_range_and_captions(models: tuple[Generator, RNNEncoder]) -> None:
    gen, text = models
    res = sample_images(gen, text, VOCAB, ["a red bird", "a small blue bird"], n_per_caption=3, seed=0)
    assert res.images.shape == (6, 3, 32, 32)
    assert float(res.images.min()) >= -1 and float(res.images.max()) <= 1
    assert res.captions == ["a red bird"] * 3 + ["a small blue bird"] * 3
    assert len(res.masks) == len(gen.blocks)
    for mask in res.masks:
        assert mask.shape[0] == 6 and mask.shape[1] == 1


def test_sampling_is_deterministic_with_seed(models: tuple[Generator, RNNEncoder]) -> None:
    gen, text = models
    a = sample_images(gen, text, VOCAB, ["a red bird"], n_per_caption=2, seed=7)
    b = sample_images(gen, text, VOCAB, ["a red bird"], n_per_caption=2, seed=7)
    c = sample_images(gen, text, VOCAB, ["a red bird"], n_per_caption=2, seed=8)
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)


def test_batching_does_not_change_images(models: tuple[Generator, RNNEncoder]) -> None:
    gen, text = models
    a = sample_images(gen, text, VOCAB, ["a red bird", "blue wings"], n_per_caption=3, seed=3)
    b = sample_images(gen, text, VOCAB, ["a red bird", "blue wings"], n_per_caption=3, seed=3, batch_size=4)
    torch.testing.assert_close(a.images, b.images)


def test_sampling_equals_a_manual_forward(models: tuple[Generator, RNNEncoder]) -> None:
    """Reference: encode the caption, draw the same noise, run the generator in eval mode."""
    gen, text = models
    res = sample_images(gen, text, VOCAB, ["small black bird"], n_per_caption=2, seed=5)
    ids = torch.zeros(1, 18, dtype=torch.long)
    ids[0, :3] = torch.tensor([5, 8, 2])
    gen.eval(), text.eval()
    with torch.no_grad():
        _, sent = text(ids, torch.tensor([3]))
        z = truncated_noise(2, gen.cfg.z_dim, 0.88, torch.Generator().manual_seed(5))
        want = gen(z, sent.repeat(2, 1), csa_sample=False).image
    gen.train()
    torch.testing.assert_close(res.images, want)


def test_modes_are_restored(models: tuple[Generator, RNNEncoder]) -> None:
    gen, text = models
    gen.train(), text.train()
    sample_images(gen, text, VOCAB, ["a bird"], n_per_caption=1)
    assert gen.training and text.training


def test_csa_sampling_option_changes_images(models: tuple[Generator, RNNEncoder]) -> None:
    gen, text = models
    mean = sample_images(gen, text, VOCAB, ["a red bird"], n_per_caption=2, seed=1)
    sampled = sample_images(gen, text, VOCAB, ["a red bird"], n_per_caption=2, seed=1, csa_sample=True)
    again = sample_images(gen, text, VOCAB, ["a red bird"], n_per_caption=2, seed=1, csa_sample=True)
    assert not torch.equal(mean.images, sampled.images)
    assert torch.equal(sampled.images, again.images)


def test_sample_errors(models: tuple[Generator, RNNEncoder]) -> None:
    gen, text = models
    with pytest.raises(OutOfVocabularyError, match="zebra"):
        sample_images(gen, text, VOCAB, ["zebra"], n_per_caption=1)
    with pytest.raises(ValueError, match="n_per_caption"):
        sample_images(gen, text, VOCAB, ["a bird"], n_per_caption=0)
    with pytest.raises(ValueError, match="non-empty list"):
        sample_images(gen, text, VOCAB, [], n_per_caption=1)


# ----------------------------------------------------------------------------- grid


def _result(n_captions: int, per: int, size: int = 16) -> SampleResult:
    images = torch.rand(n_captions * per, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    caps = [f"caption number {i} " + "word " * 30 for i in range(n_captions) for _ in range(per)]
    return SampleResult(images, [], caps, per)


def test_caption_grid_layout_and_png(tmp_path: Path) -> None:
    res = _result(2, 3)
    img = caption_grid_image(res, ncol=8, pad=2)
    assert img.width == 3 * (16 + 2) + 2  # one row of 3 per caption
    path = save_caption_grid(res, tmp_path / "sub" / "grid.png", ncol=8)
    with Image.open(path) as png:
        assert png.format == "PNG"
        assert png.size == img.size
    # a pixel of the first image appears where the layout puts it (below the caption band)
    pixels = ((res.images[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0)
    arr = torch.from_numpy(np.array(img))
    # find the first image: scan rows for an exact match of its first pixel row
    rows = [y for y in range(arr.shape[0] - 16) if torch.equal(arr[y, 2 : 2 + 16], pixels[0])]
    assert rows, "the first image was not pasted into the grid"


def test_caption_grid_wraps_rows() -> None:
    res = _result(1, 10)
    one_row = caption_grid_image(res, ncol=10)
    two_rows = caption_grid_image(res, ncol=5)
    assert two_rows.width < one_row.width
    assert two_rows.height - one_row.height >= 16  # an extra row of images (caption wraps more too)


# ----------------------------------------------------------------------------- interpolation


def test_interpolation_end_points_are_the_captions_samples(models: tuple[Generator, RNNEncoder]) -> None:
    gen, text = models
    row = interpolate_captions(gen, text, VOCAB, "a red bird", "a small blue bird", steps=5, seed=3)
    assert row.images.shape == (5, 3, 32, 32) and row.captions[0] == "t = 0.00" and row.captions[-1] == "t = 1.00"
    a = sample_images(gen, text, VOCAB, ["a red bird"], n_per_caption=1, seed=3).images[0]
    b = sample_images(gen, text, VOCAB, ["a small blue bird"], n_per_caption=1, seed=3).images[0]
    assert torch.allclose(row.images[0], a, atol=1e-5) and torch.allclose(row.images[-1], b, atol=1e-5)


def test_interpolation_midpoint_uses_the_mean_code(models: tuple[Generator, RNNEncoder]) -> None:
    gen, text = models
    row = interpolate_captions(gen, text, VOCAB, "a red bird", "a small blue bird", steps=3, seed=0)
    ids, lens = encode_captions(["a red bird", "a small blue bird"], VOCAB)
    with torch.no_grad():
        _, sent = text.eval()(ids, lens)
        z = truncated_noise(1, gen.cfg.z_dim, 0.88, torch.Generator().manual_seed(0))
        mid = gen.eval()(z, sent.mean(0, keepdim=True), csa_sample=False).image[0]
    assert torch.allclose(row.images[1], mid, atol=1e-5)
    with pytest.raises(ValueError, match="steps must be >= 2"):
        interpolate_captions(gen, text, VOCAB, "a red bird", "a bird", steps=1)


def test_mask_centre_border_on_hand_made_masks() -> None:
    # A 4x4 mask that is 1 on its central 2x2 and 0 elsewhere: after nearest upsampling to 16 px
    # the central half of the image is exactly the ones.
    m = torch.zeros(1, 1, 4, 4)
    m[..., 1:3, 1:3] = 1.0
    # A 16x16 mask with a ramp: the two means by hand over the central 8x8 and the rest.
    ramp = torch.arange(256, dtype=torch.float32).reshape(1, 1, 16, 16) / 255
    centre = torch.zeros(16, 16, dtype=torch.bool)
    centre[4:12, 4:12] = True
    (c1, b1), (c2, b2) = mask_centre_border([m, torch.cat([ramp, 1 - ramp])], 16)
    assert (c1, b1) == (1.0, 0.0)
    assert c2 == pytest.approx(0.5) and b2 == pytest.approx(0.5)  # the ramp and its mirror average to 1/2
    (c3, b3), = mask_centre_border([ramp], 16)
    assert c3 == pytest.approx(float(ramp[0, 0][centre].mean())) and b3 == pytest.approx(float(ramp[0, 0][~centre].mean()))
