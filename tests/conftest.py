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
    from csagan.damsm_encoders import SmallCNNEncoder
    from csagan.damsm_io import save_damsm
    from csagan.data.datasets import TextImageDataset
    from csagan.data.toybirds import make_toybirds
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


@pytest.fixture(scope="session")
def attngan_damsm(toy: dict[str, Path]) -> dict[str, Path]:
    """AttnGAN's DAMSMencoders/bird as released, for :func:`toy`'s vocabulary, and a copy of that data set.

    ``damsm``: only ``text_encoder200.pth`` / ``image_encoder200.pth`` (RNN_ENCODER: BiLSTM, emb 300,
    256-d; CNN_ENCODER: Inception-v3 + 256-d projections; AttnGAN's parameter names, without the
    BatchNorm ``num_batches_tracked`` counters that files of PyTorch < 0.4.1 lack) and an older
    ``text_encoder100.pth`` of other weights; no damsm.json, no vocab.json. ``data``: :func:`toy`'s
    images with the captions pickle under AttnGAN's name ``captions.pickle``.
    """
    import shutil

    from csagan.damsm_encoders import InceptionEncoder
    from csagan.data.captions import CAPTIONS_PICKLE_NAMES
    from csagan.data.safe_pickle import safe_load_pickle
    from csagan.text import RNNEncoder

    base = toy["base"] / "attngan"
    data = base / "birds"
    shutil.copytree(toy["data"], data)
    for name in CAPTIONS_PICKLE_NAMES:
        (data / name).unlink(missing_ok=True)
    shutil.copy(toy["data"] / CAPTIONS_PICKLE_NAMES[0], data / "captions.pickle")
    n_words = len(safe_load_pickle(data / "captions.pickle")[2])
    folder = base / "DAMSMencoders" / "bird"
    folder.mkdir(parents=True)
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(1)
    text = RNNEncoder(n_words, emb_dim=300, hidden=256, bidirectional=True)
    image = InceptionEncoder(emb_dim=256)
    old_text = RNNEncoder(n_words, emb_dim=300, hidden=256, bidirectional=True)
    torch.random.set_rng_state(gen_state)
    torch.save(text.state_dict(), folder / "text_encoder200.pth")
    torch.save(old_text.state_dict(), folder / "text_encoder100.pth")
    state = {k: v for k, v in image.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, folder / "image_encoder200.pth")
    return {"damsm": folder, "data": data, "base": base}
