"""Train configuration, presets and key=value overrides (csagan.train.config)."""

from __future__ import annotations

import pytest

from csagan.config import get_model_config
from csagan.settings import parse_override
from csagan.train.config import (
    TrainConfig,
    default_preset,
    get_train_preset,
    list_train_presets,
    resolve,
)


def test_presets_listed() -> None:
    assert set(list_train_presets()) == {"cub", "coco", "toybirds-cpu", "smoke"}


@pytest.mark.parametrize("name, epochs", [("cub", 400), ("coco", 200)])
def test_paper_presets_follow_the_paper(name: str, epochs: int) -> None:
    model, train = resolve("csagan", name)
    assert (train.batch_size, train.epochs, train.lr_g, train.lr_d, train.betas) == (40, epochs, 2e-4, 4e-4, (0.0, 0.9))
    assert model.image_size == train.image_size == 256
    assert (model.magp_weight, model.kl_weight, model.damsm_weight) == (2.0, 0.01, 0.05)
    assert model == get_model_config("csagan", "paper")


def test_default_preset_is_the_cpu_one() -> None:
    assert default_preset("dfgan") == "toybirds-cpu"
    _, train = resolve("dfgan")
    assert train.device == "cpu" and train.image_size == 64


def test_smoke_preset_is_tiny() -> None:
    model, train = resolve("csagan", "smoke")
    assert model.image_size == 32 and model.nf == 4 and train.batch_size == 4 and train.max_steps <= 8


def test_overrides_reach_train_and_model_fields() -> None:
    model, train = resolve(
        "ssagan", "smoke", ["batch_size=2", "nf=8", "channels_last=true", "precision=bf16", "betas=(0.5, 0.99)",
                            "damsm_dir=/x/y", "sample_captions=['a red bird', 'a blue bird']", "kl_side=discriminator"]
    )
    assert train.batch_size == 2 and model.nf == 8 and train.channels_last is True
    assert train.precision == "bf16" and train.betas == (0.5, 0.99) and train.damsm_dir == "/x/y"
    assert train.sample_captions == ("a red bird", "a blue bird") and model.kl_side == "discriminator"


def test_image_size_override_goes_to_both() -> None:
    model, train = resolve("csagan", "smoke", ["image_size=64"])
    assert model.image_size == train.image_size == 64


def test_prefixed_override_picks_one_side() -> None:
    model, train = resolve("csagan", "smoke", ["model.image_size=64"])
    assert model.image_size == 64 and train.image_size == 32


def test_unknown_override_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"unknown setting 'bach_size'.*batch_size.*nf"):
        resolve("csagan", "smoke", ["bach_size=3"])


def test_bad_override_value_and_syntax() -> None:
    with pytest.raises(ValueError, match="key=value"):
        parse_override("batch_size")
    with pytest.raises(ValueError, match="batch_size='big'"):
        resolve("csagan", "smoke", ["batch_size=big"])
    with pytest.raises(ValueError, match="batch_size"):
        resolve("csagan", "smoke", ["batch_size=2.5"])
    with pytest.raises(ValueError, match="boolean"):
        resolve("csagan", "smoke", ["compile=maybe"])


def test_unknown_preset_and_config() -> None:
    with pytest.raises(ValueError, match="smoke"):
        get_train_preset("tiny")
    with pytest.raises(ValueError, match="csagan"):
        resolve("nogan", "smoke")


def test_round_trip_through_dict() -> None:
    _, train = resolve("csagan", "smoke", ["sample_captions=['a bird']"])
    assert TrainConfig.from_dict(train.to_dict()) == train


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0, "max_steps": 0}, "forever"),
        ({"precision": "fp16", "device": "cpu"}, "CUDA"),
        ({"device": "tpu"}, "device"),
        ({"batch_size": 0}, "batch_size"),
        ({"betas": (0.0, 1.5)}, "betas"),
    ],
)
def test_invalid_values_are_rejected(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)  # type: ignore[arg-type]


def test_unknown_field_in_dict() -> None:
    with pytest.raises(ValueError, match="valid names"):
        TrainConfig.from_dict({"batchsize": 3})


def test_damsm_loss_readings_are_train_settings() -> None:
    """γ1-γ3 and the readings of Eq. (8) / Eqs. (10)-(11) of the GAN's L_DAMSM: defaults as before, overridable."""
    _, train = resolve("csagan", "cub")
    assert (train.damsm_gamma1, train.damsm_gamma2, train.damsm_gamma3) == (5.0, 5.0, 10.0)
    assert (train.damsm_word_score_mode, train.damsm_reduction) == ("code", "mean")
    _, train = resolve("csagan", "smoke", ["damsm_word_score_mode=paper", "damsm_reduction=sum", "damsm_gamma1=4"])
    assert (train.damsm_word_score_mode, train.damsm_reduction) == ("paper", "sum")
    assert train.damsm_gamma1 == 4.0 and isinstance(train.damsm_gamma1, float)
    assert TrainConfig.from_dict(train.to_dict()) == train


@pytest.mark.parametrize(
    "override, match",
    [
        ("damsm_reduction=bogus", r"damsm_reduction='bogus' is invalid; choose one of \['mean', 'sum'\]"),
        ("damsm_word_score_mode=max", r"damsm_word_score_mode='max' is invalid; choose one of \['code', 'paper'\]"),
        ("damsm_gamma2=0", r"damsm_gamma2 must be a finite number > 0"),
        ("damsm_gamma3=-1", r"damsm_gamma3 must be a finite number > 0"),
    ],
)
def test_bad_damsm_reading_is_a_clear_error(override: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        resolve("csagan", "smoke", [override])


def test_config_show_lists_damsm_readings_and_cli_rejects_bogus(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from csagan.cli import main

    assert main(["config", "show", "csagan", "--set", "damsm_reduction=sum"]) == 0
    shown = json.loads(capsys.readouterr().out)["train"]
    assert {k: shown[k] for k in shown if k.startswith(("damsm_gamma", "damsm_word", "damsm_red"))} == {
        "damsm_gamma1": 5.0, "damsm_gamma2": 5.0, "damsm_gamma3": 10.0, "damsm_word_score_mode": "code",
        "damsm_reduction": "sum"}
    assert main(["config", "show", "csagan", "--set", "damsm_reduction=bogus"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "damsm_reduction='bogus'" in err and "'mean', 'sum'" in err
