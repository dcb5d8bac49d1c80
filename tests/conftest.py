"""Shared test fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """One intra-op thread for modules of tiny tensors: OpenMP spin-waiting on a busy 2-core
    machine made two threads up to ~10x slower there. Use with
    ``pytestmark = pytest.mark.usefixtures("single_thread")``."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
