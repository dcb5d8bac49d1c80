"""csagan.settings: the one --set parser and type check shared by the model, train and pretrain settings."""

from __future__ import annotations

from typing import Literal

import pytest

from csagan.settings import check_type, parse_override, parse_value


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
