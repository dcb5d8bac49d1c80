"""Tests for the model-configuration registry."""

from __future__ import annotations

import json

import pytest

from csagan.config import ModelConfig, get_model_config, list_configs

EXPECTED = [
    "csagan",
    "csagan-no-ssf",
    "csagan-no-damsm",
    "csagan-no-csa",
    "csagan-no-g0",
    "ssagan",
    "ssagan-fixed-mask",
    "dfgan",
]


def test_registry_lists_every_variant() -> None:
    assert list_configs() == EXPECTED


def test_variant_switches() -> None:
    full = get_model_config("csagan")
    assert (full.fusion, full.use_csa, full.use_g0, full.damsm_weight, full.kl_weight) == (
        "ssf",
        True,
        True,
        0.05,
        0.01,
    )
    assert get_model_config("csagan-no-ssf").fusion == "affine"
    assert get_model_config("csagan-no-damsm").damsm_weight == 0.0
    no_csa = get_model_config("csagan-no-csa")
    assert not no_csa.use_csa and no_csa.use_g0 and no_csa.code_dim == no_csa.text_dim
    assert not get_model_config("csagan-no-g0").use_g0
    ssa = get_model_config("ssagan")
    assert (ssa.fusion, ssa.use_csa, ssa.use_g0, ssa.damsm_weight, ssa.fixed_masks) == (
        "ssf",
        False,
        False,
        0.05,
        False,
    )
    assert get_model_config("ssagan-fixed-mask").fixed_masks
    df = get_model_config("dfgan")
    assert (df.fusion, df.concat_noise, df.use_csa, df.use_g0, df.damsm_weight) == ("affine", True, False, False, 0.0)
    assert df.cond_dim == df.z_dim + df.text_dim


def test_sizes() -> None:
    paper, cpu = get_model_config("csagan", "paper"), get_model_config("csagan", "cpu")
    assert (paper.image_size, paper.nf, paper.d_nf) == (256, 64, 32)
    assert cpu.image_size == 64 and cpu.nf <= 32
    with pytest.raises(ValueError, match="size preset"):
        get_model_config("csagan", "huge")


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(ValueError, match="dfgan"):
        get_model_config("stylegan")


def test_overrides_are_applied_and_validated() -> None:
    cfg = get_model_config("ssagan", nf=8, mask_order="upsample_then_cnn")
    assert cfg.nf == 8 and cfg.mask_order == "upsample_then_cnn" and cfg.name == "ssagan"
    with pytest.raises(ValueError, match="valid names are:.*image_size"):
        get_model_config("csagan", width=3)
    with pytest.raises(ValueError, match="fusion"):
        get_model_config("csagan", fusion="concat")
    with pytest.raises(ValueError, match="image_size"):
        get_model_config("csagan", image_size=100)
    with pytest.raises(TypeError, match="nf"):
        get_model_config("csagan", nf=8.5)
    with pytest.raises(ValueError, match="fixed_masks"):
        get_model_config("dfgan", fixed_masks=True)


def test_dict_round_trip_is_json_able() -> None:
    cfg = get_model_config("csagan-no-ssf", "paper", g0_weight_init=0.2)
    text = json.dumps(cfg.to_dict())
    assert ModelConfig.from_dict(json.loads(text)) == cfg
    with pytest.raises(ValueError, match="unknown ModelConfig field"):
        ModelConfig.from_dict({**cfg.to_dict(), "extra": 1})


def test_config_is_frozen_and_replace_checks() -> None:
    cfg = ModelConfig()
    with pytest.raises(AttributeError):
        cfg.nf = 3  # type: ignore[misc]
    assert cfg.replace(nf=4).nf == 4
    with pytest.raises(ValueError, match="positive"):
        cfg.replace(nf=0)
