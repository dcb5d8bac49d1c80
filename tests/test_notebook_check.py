"""csagan.notebook.check / check_that: the chapters' verification helpers must fail on wrong values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from csagan.notebook import CheckFailed, check, check_that


def test_check_passes_within_tolerance() -> None:
    check("tensor vs list", torch.tensor([1.0, 2.0]), [1.0, 2.0 + 1e-9])
    check("loose", 1.001, 1.0, rtol=1e-2)


def test_check_catches_a_square_instead_of_the_value() -> None:
    sigma = 2.0
    with pytest.raises(CheckFailed, match="'sigma' failed: actual 4 vs expected 2"):
        check("sigma", sigma**2, sigma)


def test_check_catches_a_missing_half_at_its_index() -> None:
    expected = np.array([[0.5, 1.0], [1.5, 2.0]])
    with pytest.raises(CheckFailed, match=r"at index \(1, 1\)"):
        check("half", expected * [[1, 1], [1, 2]], expected)


def test_check_refuses_other_shapes_and_nan() -> None:
    with pytest.raises(CheckFailed, match="shape"):
        check("shape", [1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(CheckFailed, match="NaN"):
        check("nan", math.nan, 1.0)


def test_check_that_reports_its_detail() -> None:
    check_that("true", torch.tensor(True))
    with pytest.raises(CheckFailed, match="'order' failed: 3 > 2"):
        check_that("order", 3 < 2, "3 > 2")
    assert issubclass(CheckFailed, AssertionError)
