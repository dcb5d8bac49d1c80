"""Parameterised notebooks reject unknown papermill parameters instead of ignoring them."""

from __future__ import annotations

import pytest

from csagan.notebook import UnknownParameterError, check_parameters


def test_declared_parameters_pass() -> None:
    ns = {"np": object(), "config": "cub", "device": "cuda"}
    assert check_parameters({"np"}, ns, ["config", "device"]) == {"config": "cub", "device": "cuda"}


def test_unknown_parameter_lists_valid_names() -> None:
    ns = {"config": "cub", "device": "cpu", "datadir": "/data"}
    with pytest.raises(UnknownParameterError, match=r"datadir.*config, device"):
        check_parameters(set(), ns, ["config", "device"])


def test_private_names_are_ignored() -> None:
    assert check_parameters(set(), {"config": 1, "_tmp": 2}, ["config"]) == {"config": 1}


def test_undefined_declared_parameter_is_reported() -> None:
    with pytest.raises(UnknownParameterError, match="does not define: device"):
        check_parameters(set(), {"config": 1}, ["config", "device"])


def test_renamed_parameter_names_its_new_name() -> None:
    import pytest

    from csagan.notebook import UnknownParameterError, check_parameters

    before = {"PARAMETERS"}
    ns = {"PARAMETERS": 0, "config": "csagan", "preset": None, "model": "csagan"}
    with pytest.raises(UnknownParameterError, match="parameter model was renamed config"):
        check_parameters(before, ns, ["config", "preset"], renamed={"model": "config"})


def test_a_preset_given_as_the_model_config_says_to_use_preset() -> None:
    import pytest

    from csagan.notebook import check_model_config

    check_model_config("csagan")
    with pytest.raises(ValueError, match="train preset.*papermill -p preset cub"):
        check_model_config("cub")
    with pytest.raises(ValueError, match="not a model configuration"):
        check_model_config("stylegan")
