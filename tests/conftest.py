"""Shared test fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(scope="session")
def toy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 40-image, 8-species ToyBirds set and a DAMSM folder of randomly initialised encoders (32 px)."""
    from csagan.damsm import SmallCNNEncoder
    from csagan.data.datasets import TextImageDataset
    from csagan.data.toybirds import make_toybirds
    from csagan.pretrain import save_damsm
    from csagan.text import RNNEncoder

    base = tmp_path_factory.mktemp("train_engine")
    root = make_toybirds(base / "toybirds", n_images=40, n_species=8, workers=1, progress=False)
    ds = TextImageDataset(root, "train", image_size=32)
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    damsm = save_damsm(base / "damsm", RNNEncoder(ds.n_words), SmallCNNEncoder(image_size=32, ndf=4), ds.vocab)
    torch.random.set_rng_state(gen_state)
    return {"data": root, "damsm": damsm, "base": base}


@pytest.fixture(scope="session")
def csagan_run(toy: dict[str, Path]) -> Path:
    """A csagan run folder after 2 steps of the ``smoke`` preset on :func:`toy`."""
    from csagan.train.config import resolve
    from csagan.train.engine import train

    torch.set_num_threads(1)
    m, t = resolve("csagan", "smoke", [f"damsm_dir={toy['damsm']}", "max_steps=2"])
    return train(m, t, toy["data"], toy["base"] / "csagan_run", progress=False)
