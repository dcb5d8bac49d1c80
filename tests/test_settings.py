"""csagan.settings: the one --set parser, type check and config base shared by every workflow's settings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar, Literal

import pytest

from csagan.config import get_model_config
from csagan.evaluate import EVAL_PRESETS
from csagan.pretrain import DAMSM_PRESETS
from csagan.settings import Settings, check_type, parse_override, parse_value
from csagan.study import STUDY_PRESETS
from csagan.train.config import resolve


def test_parse_override_splits_once_and_refuses_malformed_text() -> None:
    assert parse_override(" lr_g = 1e-4 ") == ("lr_g", "1e-4")
    assert parse_override("sample_captions=a=b") == ("sample_captions", "a=b")
    for bad, match in (("lr_g", "key=value"), ("=3", "empty key"), (["lr_g=1"], "string")):
        with pytest.raises(ValueError, match=match):
            parse_override(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "hint", "expected"),
    [("8", int, 8), ("0.5", float, 0.5), ("yes", bool, True), ("off", bool, False), ("cpu", str, "cpu"),
     ("5", str, "5"), ("paper", Literal["code", "paper"], "paper"), ("0.5,0.999", tuple[float, float], (0.5, 0.999)),
     ("[0.5, 0.9]", tuple[float, float], (0.5, 0.9)), ("null", int | None, None), ("3", int | None, 3),
     ("null", None, None), ("true", None, True), ("[0.9, 0.99]", None, [0.9, 0.99]), ("cpu", None, "cpu")],
)
def test_parse_value_reads_each_kind_of_field(text: str, hint: object, expected: object) -> None:
    assert parse_value("k", text, hint) == expected


def test_parse_value_refuses_text_of_another_type() -> None:
    with pytest.raises(ValueError, match="boolean"):
        parse_value("channels_last", "maybe", bool)
    with pytest.raises(ValueError, match="cannot parse"):
        parse_value("nf", "sixteen", int)
    with pytest.raises(ValueError, match="comma-separated values, e.g. betas=0.5,0.999"):
        parse_value("betas", "0.5", tuple[float, float])


def test_check_type_names_the_field_and_the_choices() -> None:
    check_type("TrainConfig", "lr_g", 1, float)  # an int is a float
    check_type("TrainConfig", "betas", (0.0, 0.9), tuple[float, float])
    with pytest.raises(TypeError, match=r"TrainConfig\.batch_size must be of type int, got True"):
        check_type("TrainConfig", "batch_size", True, int)
    with pytest.raises(TypeError, match="betas"):
        check_type("TrainConfig", "betas", (0.5,), tuple[float, float])
    with pytest.raises(ValueError, match=r"ModelConfig\.fusion='x' is invalid; choose one of \['ssf', 'affine'\]"):
        check_type("ModelConfig", "fusion", "x", Literal["ssf", "affine"])


# ----------------------------------------------------------------------------- the Settings base


@dataclass(frozen=True)
class _Toy(Settings):
    settings_label: ClassVar[str] = "toy setting"

    steps: int = 3
    names: tuple[str, ...] = ("a",)
    betas: tuple[float, float] = (0.5, 0.9)
    scale: float | None = None

    def __post_init__(self) -> None:
        self.check_fields()


def test_settings_parse_sets_reads_tuples_part_by_part() -> None:
    got = _Toy.parse_sets(["names=csagan,dfgan", "betas=0.0,0.99", "steps=7", "scale=none"])
    assert got == {"names": ("csagan", "dfgan"), "betas": (0.0, 0.99), "steps": 7, "scale": None}
    assert _Toy.parse_sets(["names=one"]) == {"names": ("one",)}  # one value alone is a 1-tuple
    assert _Toy.parse_sets(["betas=(0.1, 0.2)"]) == {"betas": (0.1, 0.2)}  # a bracketed literal, whole
    with pytest.raises(ValueError, match="expected 2 comma-separated values"):
        _Toy.parse_sets(["betas=0.1,0.2,0.3"])


def test_settings_refuse_unknown_names_and_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown toy setting\(s\) \['step'\]; valid names are: steps, names"):
        _Toy.parse_sets(["step=3"])
    with pytest.raises(ValueError, match="unknown toy setting"):
        _Toy().replace(stepz=1)
    with pytest.raises(ValueError, match="unknown toy setting"):
        _Toy.from_dict({"steps": 1, "extra": 2})
    with pytest.raises(TypeError, match="expects a dict"):
        _Toy.from_dict([("steps", 1)])  # type: ignore[arg-type]


def test_settings_check_fields_types_values_and_turns_lists_into_tuples() -> None:
    assert _Toy(names=["x", "y"]).names == ("x", "y")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"_Toy.steps must be of type int, got '3'"):
        _Toy(steps="3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"_Toy.steps"):
        _Toy().replace(steps=2.5)


def test_settings_json_round_trip_of_every_workflow_config() -> None:
    model, train = resolve("csagan", "toybirds-cpu")
    configs = [model, train, get_model_config("dfgan"), *DAMSM_PRESETS.values(), *EVAL_PRESETS.values(),
               *STUDY_PRESETS.values()]  # fmt: skip
    for cfg in configs:
        text = json.dumps(cfg.to_dict())  # JSON-ready: no tuples left
        assert type(cfg).from_dict(json.loads(text)) == cfg, type(cfg).__name__
