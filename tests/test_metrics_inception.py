"""The FID Inception network against pytorch-fid's and torchvision's (random, test-made weights)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models import inception as tv_inception

from csagan.metrics import inception_fid as ifid
from csagan.metrics.fid import extract_features, iter_image_batches
from csagan.metrics.inception_fid import (
    FID_WEIGHTS_FILENAME,
    RANDOM_WEIGHTS_ID,
    FIDInceptionV3,
    randomize_inception_,
)

pfi = pytest.importorskip("pytorch_fid.inception")


def _pytorch_fid_build(factory: Any, state: dict[str, torch.Tensor]) -> nn.Module:
    """Build a pytorch-fid model without downloading: its loader returns our test-made weights."""
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: state):
        return factory().eval()


@pytest.fixture(scope="module")
def ours() -> FIDInceptionV3:
    return FIDInceptionV3(None, allow_random=True, seed=1)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def our_outputs(ours: FIDInceptionV3, images: torch.Tensor) -> ifid.InceptionOutputs:
    with torch.inference_mode():
        return ours.features(images)


def test_state_dict_keys_and_shapes_match_pytorch_fid(ours: FIDInceptionV3) -> None:
    ref = _pytorch_fid_build(pfi.fid_inception_v3, ours.state_dict())  # loads strictly
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == ref_shapes
    assert ref_shapes["fc.weight"] == (1008, 2048)


@pytest.mark.parametrize(
    ("ours_cls", "ref_name", "args", "channels"),
    [
        (ifid.FIDInceptionA, "FIDInceptionA", (192, 32), 192),
        (ifid.FIDInceptionC, "FIDInceptionC", (768, 128), 768),
        (ifid.FIDInceptionE1, "FIDInceptionE_1", (1280,), 1280),
        (ifid.FIDInceptionE2, "FIDInceptionE_2", (2048,), 2048),
    ],
)
def test_patched_blocks_match_pytorch_fid_and_differ_from_torchvision(
    ours_cls: type[nn.Module], ref_name: str, args: tuple[int, ...], channels: int
) -> None:
    block = randomize_inception_(ours_cls(*args), torch.Generator().manual_seed(3)).eval()
    ref = getattr(pfi, ref_name)(*args).eval()
    ref.load_state_dict(block.state_dict())
    plain = getattr(tv_inception, "Inception" + ref_name[len("FIDInception")][0])(*args).eval()
    plain.load_state_dict(block.state_dict())
    x = torch.rand(1, channels, 5, 5, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        out, expected, unpatched = block(x), ref(x), plain(x)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert (out - unpatched).abs().max() > 1e-3  # the border pooling really differs


def test_features_identical_to_pytorch_fid(
    ours: FIDInceptionV3, images: torch.Tensor, our_outputs: ifid.InceptionOutputs
) -> None:
    ref = _pytorch_fid_build(lambda: pfi.InceptionV3([3]), ours.state_dict())
    with torch.inference_mode():
        expected = ref(images)[0].flatten(1)
    assert our_outputs.pool.shape == (2, 2048)
    assert expected.abs().mean() > 1e-2  # non-degenerate random features
    torch.testing.assert_close(our_outputs.pool, expected, rtol=1e-5, atol=1e-5)


def test_logit_conventions(ours: FIDInceptionV3, our_outputs: ifid.InceptionOutputs) -> None:
    pool = our_outputs.pool.double()
    w, b = ours.fc.weight.double(), ours.fc.bias.double()
    torch.testing.assert_close(our_outputs.logits_unbiased.double(), pool @ w.T, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(our_outputs.logits.double(), F.linear(pool, w, b), rtol=1e-5, atol=1e-5)


def test_input_ranges_and_uint8_map_to_the_same_network_input(images: torch.Tensor) -> None:
    unit = FIDInceptionV3.preprocess  # unbound: only the attributes below are used
    m = mock.Mock(protocol="standard", check_range=True, input_range="unit")
    sym = mock.Mock(protocol="standard", check_range=True, input_range="symmetric")
    x_unit = unit(m, images)
    assert x_unit.shape == (2, 3, 299, 299)
    torch.testing.assert_close(unit(sym, 2 * images - 1), x_unit, rtol=0, atol=1e-6)
    as_u8 = (images * 255).round().to(torch.uint8)
    torch.testing.assert_close(unit(m, as_u8), unit(m, as_u8.float() / 255), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="input_range='symmetric'"):
        unit(m, 2 * images - 1)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        unit(m, images[:, :1])


def test_dfgan_protocol_is_torchvisions_imagenet_network() -> None:
    ours = FIDInceptionV3(None, protocol="dfgan", allow_random=True, seed=2)
    assert ours.protocol == "dfgan" and ours.weights_id == RANDOM_WEIGHTS_ID
    tv = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    tv.load_state_dict(ours.state_dict())  # same keys and shapes (1000 classes)
    tv.fc = nn.Identity()
    tv.eval()
    x = torch.rand(1, 3, 80, 80, generator=torch.Generator().manual_seed(5)) * 2 - 1
    with torch.inference_mode():
        torch.testing.assert_close(ours.pool_features(x), tv(x), rtol=1e-5, atol=1e-5)


def test_dfgan_protocol_input_is_dfgans_normalize_input(images: torch.Tensor) -> None:
    """DF-GAN's models/inception.py maps [0, 1] per channel: x·(std/0.5) + (mean − 0.5)/0.5."""
    pre = FIDInceptionV3.preprocess
    m = mock.Mock(protocol="dfgan", check_range=True, input_range="unit")
    sym = mock.Mock(protocol="dfgan", check_range=True, input_range="symmetric")
    resized = torch.nn.functional.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False,
                                              antialias=True)
    expected = torch.empty_like(resized)
    for c, (mean, std) in enumerate(((0.485, 0.229), (0.456, 0.224), (0.406, 0.225))):
        expected[:, c] = resized[:, c] * (std / 0.5) + (mean - 0.5) / 0.5
    torch.testing.assert_close(pre(m, images), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(pre(sym, 2 * images - 1), expected, rtol=0, atol=1e-6)
    # not the standard protocol's 2x - 1 (the difference is up to ~0.2 in the blue channel)
    assert float((pre(m, images) - (2 * resized - 1)).abs().max()) > 0.05


def test_random_weights_need_explicit_permission() -> None:
    with pytest.raises(ValueError, match="allow_random=True"):
        FIDInceptionV3(None)


def test_missing_weights_error_names_file_places_and_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv("CSAGAN_FID_WEIGHTS", str(tmp_path / "env.pth"))
    with pytest.raises(FileNotFoundError) as err:
        FIDInceptionV3()
    msg = str(err.value)
    assert FID_WEIGHTS_FILENAME in msg and str(tmp_path / "env.pth") in msg
    assert str(tmp_path / "hub" / "checkpoints" / FID_WEIGHTS_FILENAME) in msg
    assert "github.com/mseitzer/pytorch-fid/releases" in msg
    with pytest.raises(FileNotFoundError, match="given.pth"):
        FIDInceptionV3(tmp_path / "given.pth")


def test_weights_file_is_found_loaded_and_identified(
    ours: FIDInceptionV3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = tmp_path / "hub" / "checkpoints" / FID_WEIGHTS_FILENAME
    ckpt.parent.mkdir(parents=True)
    torch.save(ours.state_dict(), ckpt)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv("CSAGAN_FID_WEIGHTS", raising=False)
    with pytest.warns(UserWarning, match="sha256"):  # not the published file
        loaded = FIDInceptionV3()
    assert loaded.weights_path == ckpt
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert loaded.weights_id == f"{FID_WEIGHTS_FILENAME} sha256:{digest[:12]}"
    for key, value in ours.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    # the published name alone does not make it the standard network
    info = loaded.weights_info()
    assert loaded.weights_sha256 == digest and not loaded.is_published_weights
    assert info["is_published_weights"] is False and info["sha256"] == digest and "NON-STANDARD" in info["label"]
    assert info["published_file"] == FID_WEIGHTS_FILENAME and info["weights_path"] == str(ckpt)


def test_published_hash_is_the_file_name_suffix_and_random_weights_are_labelled(ours: FIDInceptionV3) -> None:
    assert ifid.published_hash_prefix("standard") == "6726825d"
    assert ifid.published_hash_prefix("dfgan") == "0cc3c7bd"
    info = ours.weights_info()
    assert info["sha256"] is None and info["weights_path"] is None and not ours.is_published_weights
    assert "random test weights" in str(info["label"]) and "NON-STANDARD" in str(info["label"])


def test_wrong_weights_file_is_rejected(ours: FIDInceptionV3, tmp_path: Path) -> None:
    state = dict(ours.state_dict())
    state["fc.weight"] = torch.zeros(1000, 2048)
    state["fc.bias"] = torch.zeros(1000)
    torch.save(state, tmp_path / "imagenet.pth")
    with pytest.raises(ValueError, match="imagenet.pth.*standard"):
        FIDInceptionV3(tmp_path / "imagenet.pth")


def test_extract_features_batches_loaders_and_labels_random_weights(
    ours: FIDInceptionV3, images: torch.Tensor, our_outputs: ifid.InceptionOutputs
) -> None:
    loader = [(images[:1], "caption"), {"image": images[1:]}]
    feats = extract_features(loader, ours, batch_size=2, progress=False, with_logits=True)
    assert feats.weights_id == RANDOM_WEIGHTS_ID and feats.protocol == "standard" and feats.precision == "fp32"
    np.testing.assert_allclose(feats.pool, our_outputs.pool.numpy(), rtol=1e-5, atol=1e-5)
    assert feats.logits is not None
    np.testing.assert_allclose(feats.logits, our_outputs.logits_unbiased.numpy(), rtol=1e-5, atol=1e-5)


def test_image_batching_splits_without_per_image_work(images: torch.Tensor) -> None:
    three = torch.cat([images, images[:1]])
    sizes = [b.shape[0] for b in iter_image_batches(three, 2)]
    assert sizes == [2, 1]
    sizes = [b.shape[0] for b in iter_image_batches([three, images[0]], 2)]
    assert sizes == [2, 1, 1]
    with pytest.raises(ValueError, match="'image'"):
        list(iter_image_batches([{"img": images}], 2))


@pytest.mark.slow
def test_bf16_is_opt_in_and_labelled(ours: FIDInceptionV3, images: torch.Tensor) -> None:
    fp32 = extract_features(images[:1], ours, progress=False)
    bf16 = extract_features(images[:1], ours, progress=False, bf16=True)
    assert fp32.precision == "fp32" and bf16.precision == "bf16"
    assert bf16.pool.dtype == np.float32 and np.isfinite(bf16.pool).all()
    assert np.corrcoef(fp32.pool[0], bf16.pool[0])[0, 1] > 0.99
