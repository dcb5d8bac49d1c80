"""Tests of csagan.pretrain: the DAMSM folder (save/load), retrieval accuracy and pretraining."""

from __future__ import annotations

import json
import shutil
import typing
from pathlib import Path

import pytest
import torch

from csagan.damsm import DAMSM, DAMSMConfig
from csagan.damsm_encoders import SmallCNNEncoder
from csagan.damsm_io import (
    DAMSM_JSON,
    IMAGE_ENCODER_FILE,
    TEXT_ENCODER_FILE,
    VOCAB_FILE,
    LoadedDAMSM,
    load_damsm,
    save_damsm,
    vocab_to_list,
)
from csagan.data.datasets import TextImageDataset, TextImageItem, collate
from csagan.metrics.retrieval import retrieval_accuracy
from csagan.pretrain import DAMSM_PRESETS, damsm_settings, lr_at_epoch, parse_overrides, pretrain_damsm, train_step
from csagan.text import RNNEncoder

pytestmark = pytest.mark.usefixtures("single_thread")


VOCAB = ["<end>", "a", "bird", "red", "blue", "small", "with", "wings"]


def _encoders(seed: int = 0) -> tuple[RNNEncoder, SmallCNNEncoder]:
    torch.manual_seed(seed)
    text = RNNEncoder(len(VOCAB), emb_dim=12, hidden=16)
    image = SmallCNNEncoder(image_size=32, ndf=4, emb_dim=16)
    return text, image


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(3, 3, 32, 32, generator=gen) * 2 - 1
    captions = torch.tensor([[1, 3, 2, 0], [1, 5, 4, 2], [2, 6, 7, 0]])
    cap_lens = torch.tensor([3, 4, 3])
    return images, captions, cap_lens


# ----------------------------------------------------------------------------- save / load


def test_save_load_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    text, image = _encoders()
    text.eval(), image.eval()
    images, captions, cap_lens = _batch()
    with torch.no_grad():
        want_words, want_sent = text(captions, cap_lens)
        want_regions, want_code = image(images)
    save_damsm(tmp_path / "damsm", text, image, VOCAB, gamma1=4.5, epochs=3, step=7)
    loaded = load_damsm(tmp_path / "damsm")
    assert isinstance(loaded, LoadedDAMSM)
    with torch.no_grad():
        got_words, got_sent = loaded.text_encoder(captions, cap_lens)
        got_regions, got_code = loaded.image_encoder(images)
    torch.testing.assert_close(got_words, want_words, rtol=0, atol=0)
    torch.testing.assert_close(got_sent, want_sent, rtol=0, atol=0)
    torch.testing.assert_close(got_regions, want_regions, rtol=0, atol=0)
    torch.testing.assert_close(got_code, want_code, rtol=0, atol=0)
    assert loaded.vocab == VOCAB


def test_loaded_encoders_are_frozen_and_in_eval_mode(tmp_path: Path) -> None:
    text, image = _encoders()
    loaded = load_damsm(save_damsm(tmp_path, text, image, VOCAB))
    for module in (loaded.text_encoder, loaded.image_encoder):
        assert not module.training
        assert all(not m.training for m in module.modules())
        assert all(not p.requires_grad for p in module.parameters())


def test_folder_has_the_contract_files_and_meta_keys(tmp_path: Path) -> None:
    text, image = _encoders()
    save_damsm(tmp_path, text, image, VOCAB, captions_pickle_sha256="ab" * 32, epochs=2, step=9)
    for name in (TEXT_ENCODER_FILE, IMAGE_ENCODER_FILE, DAMSM_JSON, VOCAB_FILE, "metrics.jsonl"):
        assert (tmp_path / name).is_file(), name
    meta = json.loads((tmp_path / DAMSM_JSON).read_text())
    expected = {
        "image_encoder": "small_cnn",
        "image_size": 32,
        "ndf": 4,
        "emb_dim": 16,
        "n_words": len(VOCAB),
        "gamma1": 4.0,
        "gamma2": 5.0,
        "gamma3": 10.0,
        "captions_pickle_sha256": "ab" * 32,
        "vocab_size": len(VOCAB),
        "epochs": 2,
        "step": 9,
    }
    for key, value in expected.items():
        assert meta[key] == value, key
    assert isinstance(meta["csagan_version"], str)
    assert json.loads((tmp_path / VOCAB_FILE).read_text()) == VOCAB
    # the text encoder file has AttnGAN's key layout
    keys = set(torch.load(tmp_path / TEXT_ENCODER_FILE, weights_only=True))
    assert {"encoder.weight", "rnn.weight_hh_l0", "rnn.weight_hh_l0_reverse"} <= keys


def test_attngan_file_names_are_accepted(tmp_path: Path) -> None:
    text, image = _encoders()
    src = save_damsm(tmp_path / "src", text, image, VOCAB)
    dst = tmp_path / "attngan"
    dst.mkdir()
    shutil.copy(src / TEXT_ENCODER_FILE, dst / "text_encoder200.pth")
    shutil.copy(src / IMAGE_ENCODER_FILE, dst / "image_encoder200.pth")
    # an older epoch with different weights must be ignored: the highest number wins
    other_text, _ = _encoders(seed=5)
    torch.save(other_text.state_dict(), dst / "text_encoder100.pth")
    shutil.copy(src / DAMSM_JSON, dst / DAMSM_JSON)
    shutil.copy(src / VOCAB_FILE, dst / VOCAB_FILE)
    loaded = load_damsm(dst)
    torch.testing.assert_close(loaded.text_encoder.encoder.weight, text.encoder.weight)


@pytest.mark.parametrize("missing", [TEXT_ENCODER_FILE, IMAGE_ENCODER_FILE, DAMSM_JSON, VOCAB_FILE])
def test_missing_file_error_names_the_file(tmp_path: Path, missing: str) -> None:
    text, image = _encoders()
    folder = save_damsm(tmp_path, text, image, VOCAB)
    (folder / missing).unlink()
    with pytest.raises(FileNotFoundError, match=missing.replace(".", r"\.")):
        load_damsm(folder)


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="DAMSM folder not found"):
        load_damsm(tmp_path / "nope")


def test_vocabulary_size_mismatch_is_refused(tmp_path: Path) -> None:
    text, image = _encoders()
    folder = save_damsm(tmp_path, text, image, VOCAB)
    (folder / VOCAB_FILE).write_text(json.dumps(VOCAB + ["extra"]))
    with pytest.raises(ValueError, match="Vocabulary size mismatch"):
        load_damsm(folder)


def test_save_refuses_vocab_that_does_not_fit_the_encoder(tmp_path: Path) -> None:
    text, image = _encoders()
    with pytest.raises(ValueError, match="n_words"):
        save_damsm(tmp_path, text, image, VOCAB[:-1])


def test_load_moves_to_map_location(tmp_path: Path) -> None:
    text, image = _encoders()
    loaded = load_damsm(save_damsm(tmp_path, text, image, VOCAB), map_location=torch.device("cpu"))
    assert next(loaded.text_encoder.parameters()).device.type == "cpu"
    assert next(loaded.image_encoder.parameters()).device.type == "cpu"


# ----------------------------------------------------------------------------- retrieval accuracy


class _OneHotImages(torch.nn.Module):
    """Image i (its top-left red value encodes i) → one-hot code e_i, one region."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = images[:, 0, 0, 0].round().long()
        code = torch.nn.functional.one_hot(idx, self.dim).float()
        return code[:, :, None, None], code


class _OneHotCaptions(torch.nn.Module):
    """Caption whose first word is w → one-hot code e_{perm[w]} (sentence and every word)."""

    def __init__(self, perm: list[int]) -> None:
        super().__init__()
        self.perm = torch.tensor(perm)

    def forward(self, captions: torch.Tensor, cap_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = torch.nn.functional.one_hot(self.perm[captions[:, 0]], len(self.perm)).float()
        words = code[:, :, None].expand(-1, -1, captions.shape[1]).contiguous()
        return words, code


def _one_hot_dataset(n: int) -> list[TextImageItem]:
    items = []
    for i in range(n):
        image = torch.full((3, 4, 4), float(i))
        caption = torch.zeros(5, dtype=torch.long)
        caption[0] = i
        items.append(TextImageItem(image, caption, 1, class_id=i, key=str(i), caption_index=0, index=i))
    return items


@pytest.mark.parametrize("score", ["sentence", "word"])
def test_retrieval_is_perfect_when_matching_pairs_are_identical(score: str) -> None:
    n = 12
    data = _one_hot_dataset(n)
    encoders = (_OneHotCaptions(list(range(n))), _OneHotImages(n))
    acc = retrieval_accuracy(encoders, data, n_candidates=5, n_queries=None, seed=0, score=score)
    assert acc["top1"] == 1.0 and acc["r_precision"] == 1.0
    assert acc["n_queries"] == n and acc["n_candidates"] == 5
    assert acc["chance_top1"] == pytest.approx(1 / n) and acc["chance_r_precision"] == pytest.approx(1 / 5)


@pytest.mark.parametrize("score", ["sentence", "word"])
def test_retrieval_counts_exactly_the_fixed_points(score: str) -> None:
    """Captions of items 0..3 point to their own image; the rest are shifted (score 0 = tie = miss)."""
    n = 12
    perm = [0, 1, 2, 3] + [4 + (k + 1) % 8 for k in range(8)]
    data = _one_hot_dataset(n)
    encoders = (_OneHotCaptions(perm), _OneHotImages(n))
    acc = retrieval_accuracy(encoders, data, n_candidates=6, n_queries=None, seed=3, score=score)
    assert acc["top1"] == pytest.approx(4 / 12)
    assert acc["r_precision"] == pytest.approx(4 / 12)


def test_retrieval_subsamples_queries_and_caps_candidates() -> None:
    n = 12
    data = _one_hot_dataset(n)
    encoders = (_OneHotCaptions(list(range(n))), _OneHotImages(n))
    acc = retrieval_accuracy(encoders, data, n_candidates=100, n_queries=7, seed=0)
    assert acc["n_queries"] == 7 and acc["n_candidates"] == 7
    with pytest.raises(ValueError, match="n_candidates"):
        retrieval_accuracy(encoders, data, n_candidates=1)


# ----------------------------------------------------------------------------- settings


def test_settings_presets_and_overrides() -> None:
    cfg = damsm_settings("toybirds-cpu", epochs=7)
    assert cfg["epochs"] == 7 and cfg["image_encoder"] == "small_cnn"
    assert damsm_settings("cub")["image_encoder"] == "inception"
    assert damsm_settings("cub")["image_size"] == 299
    assert set(DAMSM_PRESETS) >= {"toybirds-cpu", "cub", "coco"}
    with pytest.raises(ValueError, match=r"unknown DAMSM pretraining setting.*valid names.*batch_size"):
        damsm_settings("toybirds-cpu", epochz=3)
    with pytest.raises(ValueError, match="choose one of"):
        damsm_settings("imagenet")


def test_parse_overrides_types() -> None:
    got = parse_overrides(["epochs=3", "lr=0.001", "device=cpu", "max_steps=null", "betas=[0.9, 0.99]"])
    assert got == {"epochs": 3, "lr": 0.001, "device": "cpu", "max_steps": None, "betas": (0.9, 0.99)}
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["epochs"])
    with pytest.raises(ValueError, match="valid names"):
        parse_overrides(["nope=1"])


def test_lr_schedule_is_attngans_decay_with_floor() -> None:
    for epoch in (0, 1, 10, 113, 114, 200):
        assert lr_at_epoch(epoch, 0.002, 0.98) == pytest.approx(max(0.002 * 0.98**epoch, 0.0002))
    assert lr_at_epoch(500, 0.002, 0.98) == pytest.approx(0.0002)


def test_inception_needs_local_weights(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="inception_weights"):
        pretrain_damsm(tmp_path, tmp_path / "out", image_encoder="inception")


# ----------------------------------------------------------------------------- pretraining


@pytest.fixture(scope="module")
def toybirds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from csagan.data.toybirds import make_toybirds

    root = tmp_path_factory.mktemp("tb") / "toybirds"
    return make_toybirds(root, size=64, n_images=40, n_species=8, workers=1, progress=False)


TINY_RUN = {"image_size": 32, "ndf": 4, "batch_size": 8, "progress": False, "eval_queries": 10}


def test_loss_decreases_on_a_fixed_batch(toybirds: Path) -> None:
    data = TextImageDataset(toybirds, "train", image_size=32, seed=0)
    batch = collate([data[i] for i in range(8)])
    torch.manual_seed(0)
    text = RNNEncoder(data.n_words, emb_dim=32, hidden=32)
    image = SmallCNNEncoder(image_size=32, ndf=4, emb_dim=32)
    model = DAMSM(text, image, DAMSMConfig(gamma1=4, gamma2=5, gamma3=10)).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=0.002, betas=(0.5, 0.999))
    totals = [float(train_step(model, opt, batch).total) for _ in range(30)]
    assert sum(totals[-3:]) / 3 < 0.5 * sum(totals[:3]) / 3


def test_pretrain_writes_contract_folder_and_metrics(toybirds: Path, tmp_path: Path) -> None:
    out = pretrain_damsm(toybirds, tmp_path / "damsm", epochs=2, max_steps=4, log_every=1, **TINY_RUN)
    for name in (TEXT_ENCODER_FILE, IMAGE_ENCODER_FILE, DAMSM_JSON, VOCAB_FILE, "metrics.jsonl", "checkpoint.pt"):
        assert (out / name).is_file(), name
    meta = json.loads((out / DAMSM_JSON).read_text())
    assert meta["step"] == 4 and meta["epochs"] == 2  # 30 train images / batch 8 = 3 steps per epoch
    assert meta["image_encoder"] == "small_cnn" and meta["image_size"] == 32 and meta["ndf"] == 4
    assert len(meta["captions_pickle_sha256"]) == 64
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    for r in train:
        assert {"step", "epoch", "w1", "w2", "s1", "s2", "total", "lr"} <= set(r)
        assert r["total"] == pytest.approx(r["w1"] + r["w2"] + r["s1"] + r["s2"], rel=1e-5)
    assert [r["epoch"] for r in evals] == [0, 1]
    assert {"loss", "top1", "r_precision", "chance_r_precision"} <= set(evals[0])
    loaded = load_damsm(out)
    data = TextImageDataset(toybirds, "test", image_size=32, transform="eval")
    assert loaded.vocab == vocab_to_list(data.vocab)


def test_pretrain_is_seeded_and_leaves_global_rng_alone(toybirds: Path, tmp_path: Path) -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = pretrain_damsm(toybirds, tmp_path / "a", epochs=1, max_steps=2, eval_every_epoch=False, **TINY_RUN)
    assert torch.equal(torch.get_rng_state(), before)
    b = pretrain_damsm(toybirds, tmp_path / "b", epochs=1, max_steps=2, eval_every_epoch=False, **TINY_RUN)
    sa = torch.load(a / IMAGE_ENCODER_FILE, weights_only=True)
    sb = torch.load(b / IMAGE_ENCODER_FILE, weights_only=True)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_pretrain_resumes_from_checkpoint(toybirds: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    pretrain_damsm(toybirds, out, epochs=1, eval_every_epoch=False, **TINY_RUN)
    assert json.loads((out / DAMSM_JSON).read_text())["step"] == 3
    pretrain_damsm(toybirds, out, epochs=2, eval_every_epoch=False, log_every=1, **TINY_RUN)
    meta = json.loads((out / DAMSM_JSON).read_text())
    assert meta["step"] == 6 and meta["epochs"] == 2
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 4, 5, 6]  # log_every=10 in the first run logs step 1 only


def test_pretrain_refuses_batch_larger_than_split(toybirds: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        pretrain_damsm(toybirds, tmp_path / "x", **{**TINY_RUN, "batch_size": 64})


def test_import_attngan_release_into_a_damsm_folder(tmp_path: Path) -> None:
    """AttnGAN-style files (Inception image encoder, captions pickle) become a loadable folder."""
    from csagan.damsm_encoders import InceptionEncoder
    from csagan.damsm_io import import_attngan_damsm
    from csagan.data.safe_pickle import safe_dump_pickle

    torch.manual_seed(0)
    text = RNNEncoder(len(VOCAB))
    image = InceptionEncoder(emb_dim=256)
    torch.save(text.state_dict(), tmp_path / "text_encoder200.pth")
    torch.save(image.state_dict(), tmp_path / "image_encoder200.pth")
    ixtoword = dict(enumerate(VOCAB))
    wordtoix = {w: i for i, w in ixtoword.items()}
    safe_dump_pickle([[[1, 2]], [[3, 2]], ixtoword, wordtoix], tmp_path / "captions.pickle")
    out = import_attngan_damsm(
        tmp_path / "text_encoder200.pth",
        tmp_path / "image_encoder200.pth",
        tmp_path / "captions.pickle",
        tmp_path / "d",
    )
    loaded = load_damsm(out)
    assert loaded.meta["image_encoder"] == "inception" and loaded.meta["image_size"] == 299
    assert isinstance(loaded.image_encoder, InceptionEncoder)
    torch.testing.assert_close(loaded.image_encoder.emb_cnn_code.weight, image.emb_cnn_code.weight)
    captions, cap_lens = torch.tensor([[1, 3, 2]]), torch.tensor([3])
    text.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.text_encoder(captions, cap_lens)[1], text(captions, cap_lens)[1])


# ----------------------------------------------------------------------------- AttnGAN's released folder


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_attngan_release_folder_loads_with_the_datasets_captions_pickle(attngan_damsm: dict[str, Path]) -> None:
    """No damsm.json, no vocab.json: architecture from the weights, vocabulary from captions.pickle."""
    from csagan.damsm_encoders import InceptionEncoder
    from csagan.data.safe_pickle import safe_load_pickle

    folder, data = attngan_damsm["damsm"], attngan_damsm["data"]
    before = _tree(folder)
    loaded = load_damsm(folder, data_dir=data)
    assert _tree(folder) == before  # read only: nothing written into the user's folder
    _, _, ixtoword, _ = safe_load_pickle(data / "captions.pickle")
    assert loaded.vocab == [ixtoword[i] for i in range(len(ixtoword))]
    assert isinstance(loaded.image_encoder, InceptionEncoder)
    text = loaded.text_encoder
    assert (text.n_words, text.hidden, text.rnn.bidirectional) == (len(ixtoword), 256, True)
    assert text.encoder.weight.shape[1] == 300
    assert loaded.meta["image_encoder"] == "inception" and loaded.meta["image_size"] == 299
    assert loaded.meta["text_encoder_file"] == "text_encoder200.pth"  # the highest epoch, not text_encoder100.pth
    assert loaded.meta["vocab_source"] == str(data / "captions.pickle")
    assert len(loaded.meta["captions_pickle_sha256"]) == 64
    want = torch.load(folder / "text_encoder200.pth", weights_only=True)
    for key, value in want.items():
        torch.testing.assert_close(text.state_dict()[key], value, rtol=0, atol=0)
    want_img = torch.load(folder / "image_encoder200.pth", weights_only=True)
    torch.testing.assert_close(loaded.image_encoder.emb_cnn_code.weight, want_img["emb_cnn_code.weight"])
    # the captions pickle itself may be passed instead of the data folder
    assert load_damsm(folder, data_dir=data / "captions.pickle").vocab == loaded.vocab


def test_attngan_release_folder_without_a_vocabulary_names_the_missing_file(
    attngan_damsm: dict[str, Path], tmp_path: Path
) -> None:
    folder = attngan_damsm["damsm"]
    with pytest.raises(FileNotFoundError, match=r"vocab\.json not found and no dataset given.*captions\.pickle") as err:
        load_damsm(folder)
    assert "\n" not in str(err.value)
    (tmp_path / "data").mkdir()
    with pytest.raises(FileNotFoundError, match=r"neither .*vocab\.json nor .*data/captions\.pickle") as err:
        load_damsm(folder, data_dir=tmp_path / "data")
    assert "\n" not in str(err.value)


def test_attngan_release_folder_with_another_vocabulary_is_refused(
    attngan_damsm: dict[str, Path], tmp_path: Path
) -> None:
    from csagan.data.safe_pickle import safe_dump_pickle

    words = VOCAB + ["extra"]
    safe_dump_pickle([[[1, 2]], [[3, 2]], dict(enumerate(words)), {w: i for i, w in enumerate(words)}],
                     tmp_path / "captions.pickle")
    with pytest.raises(ValueError, match=r"Vocabulary size mismatch.*captions\.pickle"):
        load_damsm(attngan_damsm["damsm"], data_dir=tmp_path)


def test_unknown_image_encoder_without_damsm_json_is_a_clear_error(tmp_path: Path) -> None:
    text, _ = _encoders()
    torch.save(text.state_dict(), tmp_path / "text_encoder200.pth")
    torch.save({"conv.weight": torch.zeros(2, 2)}, tmp_path / "image_encoder200.pth")
    (tmp_path / VOCAB_FILE).write_text(json.dumps(VOCAB))
    with pytest.raises(ValueError, match=r"image_encoder200\.pth is neither AttnGAN's Inception-v3"):
        load_damsm(tmp_path)


# ----------------------------------------------------------------------------- Eq. 8 / Eqs. 10-11 readings


def test_loss_readings_are_pretraining_settings() -> None:
    cfg = damsm_settings("toybirds-cpu")
    assert (cfg["word_score_mode"], cfg["reduction"]) == ("code", "mean")  # AttnGAN's, as before
    got = parse_overrides(["word_score_mode=paper", "reduction=sum", "gamma1=5"])
    assert got == {"word_score_mode": "paper", "reduction": "sum", "gamma1": 5}
    assert damsm_settings("toybirds-cpu", **got)["reduction"] == "sum"


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [({"reduction": "bogus"}, ValueError, "reduction must be 'mean'"),
     ({"word_score_mode": "max"}, ValueError, "word_score_mode must be"),
     ({"gamma3": 0}, ValueError, "gamma3 must be > 0"),
     ({"gamma1": "x"}, TypeError, "PretrainConfig.gamma1 must be of type float")],
)  # fmt: skip
def test_bad_loss_reading_fails_before_reading_data(
    tmp_path: Path, bad: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):  # tmp_path holds no data set: the check comes first
        pretrain_damsm(tmp_path, tmp_path / "out", **bad)


def test_pretrain_config_is_the_one_resolver() -> None:
    from csagan.damsm_io import IMAGE_ENCODER_KINDS
    from csagan.pretrain import PretrainConfig, pretrain_config

    assert typing.get_args(typing.get_type_hints(PretrainConfig)["image_encoder"]) == IMAGE_ENCODER_KINDS
    cfg = pretrain_config("toybirds-cpu", ["epochs=3", "betas=0.9,0.99"], seed=4)
    assert (cfg.epochs, cfg.betas, cfg.seed, cfg.batch_size) == (3, (0.9, 0.99), 4, 24)
    assert damsm_settings("toybirds-cpu", epochs=3, betas=(0.9, 0.99), seed=4) == cfg.to_dict()
    with pytest.raises(ValueError, match="choose one of"):
        pretrain_config(None, ["image_encoder=resnet"])
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        pretrain_config(None, ["epochs=0"])


def test_pretraining_loss_follows_the_reading(toybirds: Path, tmp_path: Path) -> None:
    """Same seed, same first batch: 'sum' is B × 'mean' for every term (Eqs. 10-11); 'paper' (Eq. 8) changes
    the word terms only."""
    def first_record(name: str, **settings: object) -> dict[str, float]:
        out = pretrain_damsm(toybirds, tmp_path / name, epochs=1, max_steps=1, eval_every_epoch=False,
                             **{**TINY_RUN, **settings})
        assert json.loads((out / DAMSM_JSON).read_text())["reduction"] == settings.get("reduction", "mean")
        return json.loads((out / "metrics.jsonl").read_text().splitlines()[0])

    mean, total = first_record("mean"), first_record("sum", reduction="sum")
    batch = TINY_RUN["batch_size"]
    for key in ("w1", "w2", "s1", "s2"):
        assert total[key] == pytest.approx(batch * mean[key], rel=1e-5), key
    paper = first_record("paper", word_score_mode="paper")
    assert json.loads((tmp_path / "paper" / DAMSM_JSON).read_text())["word_score_mode"] == "paper"
    assert paper["s1"] == pytest.approx(mean["s1"], rel=1e-6) and paper["s2"] == pytest.approx(mean["s2"], rel=1e-6)
    assert abs(paper["w1"] - mean["w1"]) > 1e-3


def test_pretraining_resume_refuses_another_reading(toybirds: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    pretrain_damsm(toybirds, out, epochs=1, eval_every_epoch=False, **TINY_RUN)
    # a checkpoint written before these settings existed resumes as the defaults
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    for key in ("word_score_mode", "reduction"):
        del state["settings"][key]
    torch.save(state, out / "checkpoint.pt")
    with pytest.raises(ValueError, match=r"reduction: 'mean' -> 'sum'.*resume=false"):
        pretrain_damsm(toybirds, out, epochs=2, eval_every_epoch=False, reduction="sum", **TINY_RUN)
    pretrain_damsm(toybirds, out, epochs=2, eval_every_epoch=False, **TINY_RUN)
    assert json.loads((out / DAMSM_JSON).read_text())["step"] == 6
