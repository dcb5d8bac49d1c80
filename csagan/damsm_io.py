"""The DAMSM folder format: the pretrained text and image encoders of Eqs. (4)-(15) on disk.

A pretrained DAMSM lives in a folder ``DAMSM_DIR/`` (the contract shared with the GAN training
engine):

``text_encoder.pth``
    state dict of :class:`csagan.text.RNNEncoder` (AttnGAN's key layout).
``image_encoder.pth``
    state dict of :class:`csagan.damsm_encoders.SmallCNNEncoder` or :class:`csagan.damsm_encoders.InceptionEncoder`.
``damsm.json``
    ``{"image_encoder": "small_cnn"|"inception", "image_size", "ndf", "emb_dim", "n_words",
    "gamma1", "gamma2", "gamma3", "captions_pickle_sha256", "vocab_size", "epochs", "step",
    "csagan_version"}``; pretraining adds ``"word_score_mode"``, ``"reduction"`` and ``"data_dir"``.
``vocab.json``
    the ``ixtoword`` list (index 0 is ``"<end>"``).
``metrics.jsonl``
    one JSON object per logged training step / evaluation.

**Using AttnGAN's released encoders.** AttnGAN's ``DAMSMencoders/bird`` folder
(``text_encoder200.pth``, ``image_encoder200.pth``; ``*100.pth`` for COCO) is read as it is, without
``damsm.json`` or ``vocab.json``: :func:`load_damsm` takes the highest-epoch ``text_encoder*.pth`` /
``image_encoder*.pth``, infers the architecture from the state-dict shapes (AttnGAN's RNN_ENCODER,
a bidirectional LSTM with 300-d embeddings and 256-d outputs; CNN_ENCODER, Inception-v3 with 256-d
projections) and takes the vocabulary (``ixtoword``) from the dataset's captions pickle
(``captions.pickle`` = ``[train_captions, test_captions, ixtoword, wordtoix]``, or DF-GAN's
``captions_DAMSM.pickle``), so it needs the data folder: ``load_damsm(folder, data_dir=DATA)``;
``csagan train --data DATA --damsm FOLDER`` passes it. The folder is only read. A run folder's
``damsm/`` copy is written with ``damsm.json`` and ``vocab.json``, so sampling and evaluation need
no data folder. :func:`import_attngan_damsm` writes such a self-contained copy explicitly.

:mod:`csagan.pretrain` writes such folders; the GAN engine, sampling, evaluation and the book read them
through :func:`load_damsm`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from csagan import __version__
from csagan.atomic import atomic_torch_save, atomic_write_text
from csagan.damsm_encoders import InceptionEncoder, SmallCNNEncoder, load_attngan_image_encoder
from csagan.data.captions import CAPTIONS_PICKLE_NAMES, load_captions_pickle
from csagan.data.text import END_TOKEN, Vocabulary
from csagan.safe_load import load_torch_file
from csagan.text import RNNEncoder, freeze, load_attngan_text_encoder

__all__ = [
    "DAMSM_JSON",
    "IMAGE_ENCODER_FILE",
    "IMAGE_ENCODER_KINDS",
    "METRICS_FILE",
    "TEXT_ENCODER_FILE",
    "VOCAB_FILE",
    "LoadedDAMSM",
    "build_image_encoder",
    "file_sha256",
    "find_vocab_source",
    "import_attngan_damsm",
    "load_damsm",
    "read_vocab",
    "save_damsm",
    "vocab_from_captions_pickle",
    "vocab_to_list",
    "write_vocab",
]

TEXT_ENCODER_FILE = "text_encoder.pth"
IMAGE_ENCODER_FILE = "image_encoder.pth"
DAMSM_JSON = "damsm.json"
VOCAB_FILE = "vocab.json"
METRICS_FILE = "metrics.jsonl"
IMAGE_ENCODER_KINDS: tuple[str, ...] = ("small_cnn", "inception")
_DEFAULT_GAMMAS = {"gamma1": 4.0, "gamma2": 5.0, "gamma3": 10.0}
_PRETRAIN_HINT = (
    "Train one with `csagan pretrain-damsm`, or see csagan.pretrain's docstring for using "
    "AttnGAN's released text_encoder200.pth / image_encoder200.pth."
)


# ----------------------------------------------------------------------------- small file helpers


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file (used to tie a DAMSM to the captions pickle it was trained on)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- vocabulary


def vocab_to_list(vocab: Vocabulary | Sequence[str]) -> list[str]:
    """The ``ixtoword`` list of a :class:`Vocabulary` (or a list of words, checked).

    Raises:
        ValueError: indices are not ``0..n-1`` or index 0 is not ``"<end>"``.
    """
    if isinstance(vocab, Vocabulary):
        n = len(vocab)
        missing = [i for i in range(n) if i not in vocab.ixtoword]
        if missing:
            raise ValueError(
                f"the vocabulary's indices must be 0..{n - 1} without gaps; missing {missing[:5]}."
            )
        words = [vocab.ixtoword[i] for i in range(n)]
    else:
        words = [str(w) for w in vocab]
    if not words or words[0] != END_TOKEN:
        first = words[0] if words else "nothing"
        raise ValueError(
            f"vocabulary index 0 must be {END_TOKEN!r} (AttnGAN's padding token), got {first!r}; "
            "pass the dataset's vocabulary (dataset.vocab) unchanged."
        )
    return words


def write_vocab(damsm_dir: str | Path, vocab: Vocabulary | Sequence[str]) -> Path:
    """Write ``vocab.json`` (the ``ixtoword`` list) into ``damsm_dir`` atomically."""
    words = vocab_to_list(vocab)
    return atomic_write_text(Path(damsm_dir) / VOCAB_FILE, json.dumps(words, ensure_ascii=False))


def read_vocab(path: str | Path) -> list[str]:
    """Read a ``vocab.json`` written by :func:`write_vocab`.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: it is not a JSON list of strings starting with ``"<end>"``.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"{p} not found: a DAMSM folder needs vocab.json (the ixtoword list of the captions "
            "pickle the encoders were trained with). Write it with "
            "csagan.damsm_io.write_vocab(folder, vocab_from_captions_pickle(path))."
        )
    try:
        words = json.loads(p.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{p}: not valid JSON ({exc}); rewrite it with write_vocab().") from exc
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise ValueError(f"{p}: expected a JSON list of words (ixtoword), got {type(words).__name__}.")
    try:
        return vocab_to_list(words)
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from None


def vocab_from_captions_pickle(path: str | Path) -> list[str]:
    """The ``ixtoword`` list of an AttnGAN ``captions.pickle`` / DF-GAN ``captions_DAMSM.pickle``."""

    return vocab_to_list(load_captions_pickle(path).vocab)


# ----------------------------------------------------------------------------- save / load


@dataclass
class LoadedDAMSM:
    """A DAMSM read by :func:`load_damsm`: both encoders frozen and in eval mode.

    Attributes:
        text_encoder: the BiLSTM text encoder (Eqs. 13-15).
        image_encoder: the image encoder (Eq. 4).
        meta: the content of ``damsm.json`` with defaults filled in.
        vocab: the ``ixtoword`` list (index 0 is ``"<end>"``).
        path: the folder it was read from.
    """

    text_encoder: RNNEncoder
    image_encoder: nn.Module
    meta: dict[str, Any]
    vocab: list[str]
    path: Path | None = field(default=None)

    @property
    def vocabulary(self) -> Vocabulary:
        """``vocab`` as a :class:`Vocabulary` (for tokenising free text)."""
        return Vocabulary(
            ixtoword=dict(enumerate(self.vocab)), wordtoix={w: i for i, w in enumerate(self.vocab)}
        )


def _image_encoder_kind(image_encoder: nn.Module) -> str:
    if isinstance(image_encoder, InceptionEncoder):
        return "inception"
    if isinstance(image_encoder, SmallCNNEncoder):
        return "small_cnn"
    raise ValueError(
        f"image_encoder must be a csagan.damsm_encoders.SmallCNNEncoder or InceptionEncoder, got "
        f"{type(image_encoder).__name__}."
    )


def _small_cnn_ndf(encoder: SmallCNNEncoder) -> int:
    return int(encoder.emb_cnn_code.in_features // 8)


def _emb_dim(image_encoder: nn.Module) -> int:
    """D of an image encoder: the output size of its ``emb_cnn_code`` projection (W̄ of Eq. 4)."""
    layer = getattr(image_encoder, "emb_cnn_code", None)
    if not isinstance(layer, nn.Linear):
        raise ValueError(f"{type(image_encoder).__name__} has no emb_cnn_code linear layer (W̄ of Eq. 4).")
    return int(layer.out_features)


def build_image_encoder(kind: str, *, image_size: int = 64, ndf: int = 32, emb_dim: int = 256) -> nn.Module:
    """A fresh image encoder of ``kind`` (``"small_cnn"`` or ``"inception"``, random weights)."""
    if kind == "small_cnn":
        return SmallCNNEncoder(image_size=image_size, ndf=ndf, emb_dim=emb_dim)
    if kind == "inception":
        return InceptionEncoder(emb_dim=emb_dim)
    raise ValueError(f"image encoder kind must be one of {list(IMAGE_ENCODER_KINDS)}, got {kind!r}.")


def save_damsm(
    out_dir: str | Path,
    text_encoder: RNNEncoder,
    image_encoder: nn.Module,
    vocab: Vocabulary | Sequence[str],
    *,
    gamma1: float = 4.0,
    gamma2: float = 5.0,
    gamma3: float = 10.0,
    captions_pickle_sha256: str = "",
    epochs: int = 0,
    step: int = 0,
    extra_meta: dict[str, Any] | None = None,
) -> Path:
    """Write a DAMSM folder (module docstring); every file is written atomically.

    The state dicts are saved from CPU copies of the tensors, so the folder loads anywhere.
    ``metrics.jsonl`` is left as it is when it exists (training appends to it) and created empty
    otherwise. ``extra_meta`` entries are added to ``damsm.json`` (they cannot replace the
    contract's keys).

    Returns:
        The folder.

    Raises:
        ValueError: unknown image encoder type, or a vocabulary whose size differs from the text
            encoder's ``n_words``.
    """

    folder = Path(out_dir)
    kind = _image_encoder_kind(image_encoder)
    words = vocab_to_list(vocab)
    if len(words) != text_encoder.n_words:
        raise ValueError(
            f"the vocabulary has {len(words)} words but the text encoder was built for "
            f"n_words={text_encoder.n_words}; save the vocabulary the encoder was trained with."
        )
    emb_dim = _emb_dim(image_encoder)
    if emb_dim != text_encoder.hidden:
        raise ValueError(
            f"image encoder embeds into {emb_dim} dimensions but the text encoder into "
            f"{text_encoder.hidden}; DAMSM needs the same size D for both (Eq. 4)."
        )
    meta: dict[str, Any] = dict(extra_meta or {})
    meta.update(
        {
            "image_encoder": kind,
            "image_size": int(image_encoder.image_size) if kind == "small_cnn" else 299,  # type: ignore[arg-type]
            "ndf": _small_cnn_ndf(image_encoder) if isinstance(image_encoder, SmallCNNEncoder) else 0,
            "emb_dim": emb_dim,
            "n_words": int(text_encoder.n_words),
            "gamma1": float(gamma1),
            "gamma2": float(gamma2),
            "gamma3": float(gamma3),
            "captions_pickle_sha256": str(captions_pickle_sha256),
            "vocab_size": len(words),
            "epochs": int(epochs),
            "step": int(step),
            "csagan_version": __version__,
        }
    )
    folder.mkdir(parents=True, exist_ok=True)

    def cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
        return {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()}

    atomic_torch_save(cpu_state(text_encoder), folder / TEXT_ENCODER_FILE)
    atomic_torch_save(cpu_state(image_encoder), folder / IMAGE_ENCODER_FILE)
    write_vocab(folder, words)
    atomic_write_text(folder / DAMSM_JSON, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    metrics = folder / METRICS_FILE
    if not metrics.exists():
        metrics.touch()
    return folder


_EPOCH_RE = re.compile(r"(\d+)")


def _find_weights(folder: Path, plain: str, prefix: str) -> Path:
    """``folder/plain`` if it exists, else AttnGAN's ``prefix*.pth`` with the highest number."""
    direct = folder / plain
    if direct.is_file():
        return direct
    candidates = sorted(p for p in folder.glob(f"{prefix}*.pth") if p.is_file())
    if not candidates:
        raise FileNotFoundError(
            f"{direct} not found (nor AttnGAN's {prefix}*.pth, e.g. {prefix}200.pth) in the DAMSM "
            f"folder {folder}. {_PRETRAIN_HINT}"
        )

    def epoch_of(p: Path) -> int:
        numbers = _EPOCH_RE.findall(p.stem[len(prefix) :])
        return int(numbers[-1]) if numbers else -1

    return max(candidates, key=lambda p: (epoch_of(p), p.name))


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / DAMSM_JSON
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}).") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(meta).__name__}.")
    kind = meta.get("image_encoder")
    if kind not in IMAGE_ENCODER_KINDS:
        raise ValueError(
            f"{path}: 'image_encoder' must be one of {list(IMAGE_ENCODER_KINDS)}, got {kind!r}."
        )
    if kind == "small_cnn":
        for key in ("image_size", "ndf"):
            if not isinstance(meta.get(key), int) or meta[key] < 1:
                raise ValueError(
                    f"{path}: a small_cnn DAMSM needs a positive integer {key!r} (got "
                    f"{meta.get(key)!r}); it is written by save_damsm."
                )
    for key, value in _DEFAULT_GAMMAS.items():
        meta.setdefault(key, value)
    meta.setdefault("image_size", 299 if kind == "inception" else meta.get("image_size"))
    return meta


def _infer_meta(folder: Path, image_path: Path) -> dict[str, Any]:
    """``damsm.json`` of a folder that has none (AttnGAN's release), from the image encoder's keys.

    AttnGAN's CNN_ENCODER state dict holds the Inception-v3 layers (``Mixed_6e.*`` …) and the
    projections; a :class:`SmallCNNEncoder` cannot be rebuilt without ``damsm.json`` (its input size
    is not in the weights).
    """

    state = load_torch_file(
        image_path, what="a DAMSM image-encoder state dict",
        fix="use AttnGAN's released image_encoder200.pth (CUB) / image_encoder100.pth (COCO).",
    )
    keys = set(state) if isinstance(state, dict) else set()
    if any(k.startswith("Mixed_6e.") for k in keys) and "emb_cnn_code.weight" in keys:
        meta: dict[str, Any] = {"image_encoder": "inception", "image_size": 299, "ndf": 0}
    elif "features.0.0.weight" in keys and "emb_cnn_code.weight" in keys:
        raise FileNotFoundError(
            f"{folder / DAMSM_JSON} not found: {image_path} is a csagan small-CNN image encoder, whose input "
            "size is recorded only in damsm.json (written by `csagan pretrain-damsm`); restore that file."
        )
    else:
        raise ValueError(
            f"{image_path} is neither AttnGAN's Inception-v3 DAMSM image encoder (keys Mixed_6e.*, emb_cnn_code.*) "
            f"nor a csagan one, and {folder} has no {DAMSM_JSON} describing it; use AttnGAN's image_encoder200.pth."
        )
    meta.update(_DEFAULT_GAMMAS)
    meta["source"] = "AttnGAN release (no damsm.json: architecture inferred from the weights)"
    return meta


def _captions_pickle_in(data_dir: str | Path) -> Path | None:
    """The captions pickle of a dataset root (the dataset's own order), or ``data_dir`` if it is a file."""

    root = Path(data_dir)
    if root.is_file():
        return root
    found = [root / name for name in CAPTIONS_PICKLE_NAMES if (root / name).is_file()]
    return found[0] if found else None


def find_vocab_source(damsm_dir: str | Path, data_dir: str | Path | None = None) -> Path:
    """Where a DAMSM folder's vocabulary comes from: its ``vocab.json``, else ``data_dir``'s captions pickle.

    ``data_dir`` is a dataset root (``captions_DAMSM.pickle``, else ``captions.pickle``, the order the
    dataset reads them in) or a captions pickle file. Nothing is read but the directory listings.

    Raises:
        FileNotFoundError: neither exists (one line naming the missing files and the fix).
    """
    folder = Path(damsm_dir)
    vocab_path = folder / VOCAB_FILE
    if vocab_path.is_file():
        return vocab_path
    if data_dir is None:
        raise FileNotFoundError(
            f"{vocab_path} not found and no dataset given: the DAMSM folder {folder} has no vocabulary; pass "
            "the data folder whose captions.pickle the encoders were trained with (csagan train --data DATA, "
            "load_damsm(folder, data_dir=DATA)), or write vocab.json with "
            "csagan.damsm_io.write_vocab(folder, vocab_from_captions_pickle(path))."
        )
    pickle_path = _captions_pickle_in(data_dir)
    if pickle_path is None:
        raise FileNotFoundError(
            f"neither {vocab_path} nor {Path(data_dir) / 'captions.pickle'} (or captions_DAMSM.pickle) exists: "
            f"the DAMSM folder {folder} takes its vocabulary from the captions.pickle released with its encoders "
            "(AttnGAN's data/birds or data/coco); put that file into the data folder (a vocabulary built from "
            "the text files would not have AttnGAN's word indices)."
        )
    return pickle_path


def _resolve_vocab(folder: Path, data_dir: str | Path | None) -> tuple[list[str], Path, str]:
    """``(ixtoword, its source file, sha256 of a captions pickle or "")`` (:func:`find_vocab_source`)."""
    source = find_vocab_source(folder, data_dir)
    if source.name == VOCAB_FILE and source.parent == folder:
        return read_vocab(source), source, ""
    return vocab_from_captions_pickle(source), source, file_sha256(source)


def load_damsm(
    damsm_dir: str | Path,
    map_location: str | torch.device = "cpu",
    *,
    data_dir: str | Path | None = None,
) -> LoadedDAMSM:
    """Read a DAMSM folder (module docstring) into frozen, eval-mode encoders; the folder is only read.

    Weights are read with ``torch.load(weights_only=True)`` and strict ``load_state_dict``.
    ``text_encoder.pth`` / ``image_encoder.pth`` are looked for first, then AttnGAN's
    ``text_encoder*.pth`` / ``image_encoder*.pth`` (highest epoch). Missing ``damsm.json`` keys get
    defaults: γ1 = 4, γ2 = 5, γ3 = 10 (AttnGAN's pretraining values), ``image_size`` 299 for
    Inception; ``emb_dim`` and ``n_words`` are taken from the weights. Without ``damsm.json``
    (AttnGAN's release) the image encoder must be AttnGAN's Inception-v3 one (recognised by its
    keys); without ``vocab.json`` the vocabulary is the ``ixtoword`` of ``data_dir``'s captions
    pickle (``captions_DAMSM.pickle``, else ``captions.pickle``, as the dataset reads them).

    Args:
        damsm_dir: the folder.
        map_location: device the encoders are moved to.
        data_dir: the dataset root (or its captions pickle) giving the vocabulary when the
            folder has no ``vocab.json``; ignored otherwise.

    Raises:
        FileNotFoundError: the folder or one of its files is missing (the file is named).
        ValueError: a file has the wrong content, or the vocabulary and the text encoder differ.
    """
    folder = Path(damsm_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"DAMSM folder not found: {folder}. {_PRETRAIN_HINT}")
    has_meta = (folder / DAMSM_JSON).is_file()
    meta = _read_meta(folder) if has_meta else None
    text_path = _find_weights(folder, TEXT_ENCODER_FILE, "text_encoder")
    image_path = _find_weights(folder, IMAGE_ENCODER_FILE, "image_encoder")
    if meta is None:
        meta = _infer_meta(folder, image_path)
    vocab, vocab_source, pickle_sha = _resolve_vocab(folder, data_dir)
    if vocab_source != folder / VOCAB_FILE:
        meta["vocab_source"] = str(vocab_source)
        if pickle_sha and not meta.get("captions_pickle_sha256"):
            meta["captions_pickle_sha256"] = pickle_sha
    if not has_meta:
        meta["text_encoder_file"], meta["image_encoder_file"] = text_path.name, image_path.name
    try:
        text_encoder = load_attngan_text_encoder(text_path, n_words=len(vocab))
    except ValueError as exc:
        raise ValueError(f"{exc} (vocabulary read from {vocab_source})") from None
    image_encoder: nn.Module
    if meta["image_encoder"] == "inception":
        image_encoder = load_attngan_image_encoder(image_path)
    else:
        state = torch.load(image_path, weights_only=True, map_location="cpu")
        if not isinstance(state, dict) or "emb_cnn_code.weight" not in state:
            raise ValueError(
                f"{image_path} is not a SmallCNNEncoder state dict (no 'emb_cnn_code.weight'); "
                f"damsm.json says image_encoder='small_cnn'."
            )
        image_encoder = SmallCNNEncoder(
            image_size=int(meta["image_size"]),
            ndf=int(meta["ndf"]),
            emb_dim=int(state["emb_cnn_code.weight"].shape[0]),
        )
        try:
            image_encoder.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(
                f"{image_path} does not fit a SmallCNNEncoder(image_size={meta['image_size']}, "
                f"ndf={meta['ndf']}) as described by {folder / DAMSM_JSON}: {exc}"
            ) from None
    emb_dim = _emb_dim(image_encoder)
    if emb_dim != text_encoder.hidden:
        raise ValueError(
            f"{image_path} embeds into {emb_dim} dimensions but {text_path} into "
            f"{text_encoder.hidden}; the two files do not belong together."
        )
    meta.setdefault("emb_dim", emb_dim)
    meta.setdefault("n_words", text_encoder.n_words)
    meta.setdefault("vocab_size", len(vocab))
    text_encoder = freeze(text_encoder.to(map_location))  # type: ignore[assignment]
    image_encoder = freeze(image_encoder.to(map_location))
    return LoadedDAMSM(text_encoder, image_encoder, meta, vocab, folder)


def import_attngan_damsm(
    text_encoder_path: str | Path,
    image_encoder_path: str | Path,
    captions_pickle: str | Path,
    out_dir: str | Path,
) -> Path:
    """Turn AttnGAN's released DAMSM files into a DAMSM folder that :func:`load_damsm` reads.

    ``text_encoder_path`` / ``image_encoder_path`` are e.g. ``text_encoder200.pth`` /
    ``image_encoder200.pth`` (Inception image encoder); ``captions_pickle`` is the
    ``captions.pickle`` (or DF-GAN's ``captions_DAMSM.pickle``) whose vocabulary they use.
    """
    vocab = vocab_from_captions_pickle(captions_pickle)
    text_encoder = load_attngan_text_encoder(text_encoder_path, n_words=len(vocab))
    image_encoder = load_attngan_image_encoder(image_encoder_path)
    return save_damsm(
        out_dir,
        text_encoder,
        image_encoder,
        vocab,
        captions_pickle_sha256=file_sha256(captions_pickle),
        extra_meta={"source": "AttnGAN release"},
    )


