"""Profiles are read from CSAGAN_PROFILE, default to 'book', and reject unknown names."""

from __future__ import annotations

import pytest

from csagan.profile import by_profile, current_profile


def test_default_is_book() -> None:
    assert current_profile({}) == "book"


def test_reads_env_case_insensitively() -> None:
    assert current_profile({"CSAGAN_PROFILE": " Smoke "}) == "smoke"


def test_unknown_profile_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="smoke, book, full"):
        current_profile({"CSAGAN_PROFILE": "huge"})


def test_by_profile_picks_the_named_value() -> None:
    assert by_profile(1, 2, 3, profile="smoke") == 1
    assert by_profile(1, 2, 3, profile="full") == 3
