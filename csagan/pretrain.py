"""DAMSM pretraining (AttnGAN's recipe, paper Section 2.2, Eqs. 4-12) and the DAMSM folder format.

A pretrained DAMSM lives in a folder ``DAMSM_DIR/`` (the contract shared with the GAN training
engine):

``text_encoder.pth``
    state dict of :class:`csagan.text.RNNEncoder` (AttnGAN's key layout).
``image_encoder.pth``
    state dict of :class:`csagan.damsm.SmallCNNEncoder` or :class:`csagan.damsm.InceptionEncoder`.
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

**Measured on ToyBirds (CPU).** On the full ToyBirds set (8855 train / 2933 test images,
76-word vocabulary) with the small CNN at 64 px and batch 24 (368 steps per epoch), AttnGAN's
recipe first brings the losses from their over-confident start down to chance level (ln B per
term), stays near it for an epoch or two, and then learns slowly but steadily. Run on 2 CPU cores
shared with other jobs (one thread), the ``toybirds-cpu`` preset (14 epochs, 5152 steps, 29
minutes) gave test-split R-precision 1.8 % after epoch 1, 6.8 % after epoch 4, 12.2 % after
epoch 10 and 17.6 % after epoch 14 (chance 1 %; 500 queries, 100 candidates), still rising: the
``eval`` records of ``metrics.jsonl`` show the curve. That DAMSM is shipped inside the package's
trained run (:func:`csagan.paths.shipped_run`, folder ``damsm/``).
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

from csagan.atomic import atomic_torch_save, atomic_write_bytes, atomic_write_text
from csagan.damsm import InceptionEncoder, SmallCNNEncoder, load_attngan_image_encoder
from csagan.data.text import END_TOKEN, Vocabulary
from csagan.devices import module_device as _module_device
from csagan.devices import resolve_device
from csagan.text import RNNEncoder, freeze, load_attngan_text_encoder

__all__ = [
    "DAMSM_JSON",
    "DAMSM_PRESETS",
    "IMAGE_ENCODER_FILE",
    "IMAGE_ENCODER_KINDS",
    "METRICS_FILE",
    "PRETRAIN_DEFAULTS",
    "TEXT_ENCODER_FILE",
    "VOCAB_FILE",
    "LoadedDAMSM",
    "atomic_write_bytes",
    "atomic_write_text",
    "build_image_encoder",
    "damsm_settings",
    "encode_items",
    "evaluate_loss",
    "file_sha256",
    "find_vocab_source",
    "import_attngan_damsm",
    "load_damsm",
    "lr_at_epoch",
    "parse_overrides",
    "pretrain_damsm",
    "read_vocab",
    "resolve_device",
    "retrieval_accuracy",
    "save_damsm",
    "similarity_matrix",
    "train_step",
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
            "csagan.pretrain.write_vocab(folder, vocab_from_captions_pickle(path))."
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
    from csagan.data.datasets import load_captions_pickle

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
        f"image_encoder must be a csagan.damsm.SmallCNNEncoder or InceptionEncoder, got "
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
    from csagan import __version__

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
    from csagan.safe_load import load_torch_file

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
    from csagan.data.datasets import CAPTIONS_PICKLE_NAMES

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
            "csagan.pretrain.write_vocab(folder, vocab_from_captions_pickle(path))."
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


# ----------------------------------------------------------------------------- retrieval accuracy


def _encoders_of(loaded_or_modules: LoadedDAMSM | tuple[nn.Module, nn.Module]) -> tuple[nn.Module, nn.Module]:
    if isinstance(loaded_or_modules, LoadedDAMSM):
        return loaded_or_modules.text_encoder, loaded_or_modules.image_encoder
    if isinstance(loaded_or_modules, (tuple, list)) and len(loaded_or_modules) == 2:
        return loaded_or_modules[0], loaded_or_modules[1]
    raise ValueError(
        "retrieval_accuracy needs a LoadedDAMSM or a (text_encoder, image_encoder) pair, got "
        f"{type(loaded_or_modules).__name__}."
    )




@torch.no_grad()
def encode_items(
    text_encoder: nn.Module,
    image_encoder: nn.Module,
    dataset: Any,
    indices: Sequence[int],
    batch_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encode ``dataset[i]`` for ``i`` in ``indices`` (one caption per item, as the dataset picks it).

    Returns ``(regions [N, D, h, w], img_code [N, D], words [N, D, T], sent [N, D], cap_lens [N])``
    on the CPU. The encoders' train/eval modes are left as they are (callers pass eval-mode
    encoders).
    """
    from csagan.data.datasets import collate

    device = _module_device(image_encoder)
    text_device = _module_device(text_encoder)
    out: list[list[torch.Tensor]] = [[], [], [], [], []]
    for start in range(0, len(indices), batch_size):
        batch = collate([dataset[int(i)] for i in indices[start : start + batch_size]])
        regions, code = image_encoder(batch.images.to(device))
        words, sent = text_encoder(batch.captions.to(text_device), batch.cap_lens.to(text_device))
        for store, tensor in zip(out, (regions, code, words, sent, batch.cap_lens), strict=True):
            store.append(tensor.float().cpu())
    return tuple(torch.cat(parts) for parts in out)  # type: ignore[return-value]


def similarity_matrix(
    regions: torch.Tensor,
    img_code: torch.Tensor,
    words: torch.Tensor,
    sent: torch.Tensor,
    cap_lens: torch.Tensor,
    score: str = "sentence",
    gamma1: float = 4.0,
    gamma2: float = 5.0,
    chunk: int = 32,
) -> torch.Tensor:
    """Image-by-caption scores [N_images, N_captions] used for retrieval.

    ``score="sentence"``: cos(v̄_j, ē_i), the sentence-level R(Q, D) (what AttnGAN/DF-GAN's
    R-precision uses). ``score="word"``: the word-level R(Q, D) of Eq. (8) (attention of
    Eqs. 5-7); it costs N²·T·n·D operations, computed in chunks of ``chunk`` captions.
    """
    from csagan.damsm import sentence_similarity_matrix, word_similarity_matrix

    if score == "sentence":
        return sentence_similarity_matrix(img_code, sent)
    if score == "word":
        parts = [
            word_similarity_matrix(words[c : c + chunk], regions, cap_lens[c : c + chunk], gamma1, gamma2)
            for c in range(0, words.shape[0], chunk)
        ]
        return torch.cat(parts, dim=1)
    raise ValueError(f"score must be 'sentence' or 'word', got {score!r}.")


def _r_precision(
    score: str, code: torch.Tensor, sent: torch.Tensor, scores: torch.Tensor, n_cand: int, seed: int
) -> float:
    """One round of R-precision (ties count as misses) through :mod:`csagan.metrics.rprecision`."""
    from csagan.metrics.rprecision import r_precision_from_codes, r_precision_from_scores

    if score == "sentence":
        return r_precision_from_codes(code, sent, n_cand, rounds=1, seed=seed, ties="miss").mean
    return r_precision_from_scores(scores, n_cand, rounds=1, seed=seed, ties="miss").mean


def retrieval_accuracy(
    loaded_or_modules: LoadedDAMSM | tuple[nn.Module, nn.Module],
    dataset: Any,
    n_candidates: int = 100,
    n_queries: int | None = 1000,
    seed: int = 0,
    *,
    score: str = "sentence",
    batch_size: int = 64,
    gamma1: float = 4.0,
    gamma2: float = 5.0,
) -> dict[str, float]:
    """Image → caption retrieval with DAMSM encoders, on ``n_queries`` items of ``dataset``.

    Each query image is paired with the caption the dataset gives for it (``dataset[i]``; use
    an eval-transform dataset). Two accuracies:

    * ``top1``: the true caption has the highest score among the captions of all queries;
    * ``r_precision``: AttnGAN's R-precision with R = 1 — the true caption ranks first among
      ``n_candidates`` captions (itself and ``n_candidates - 1`` captions of other query items
      drawn at random). With fewer queries than ``n_candidates``, all other queries are the
      candidates (reported as ``n_candidates``).

    A query counts as a hit only when its true caption scores strictly higher than every
    competitor (ties count as misses). ``chance_top1`` and ``chance_r_precision`` are the
    accuracies of random scores (1 / number of competitors + 1). The encoders are used as they
    are (call ``.eval()`` first); queries and candidates are drawn with generators seeded by
    ``seed``. The R-precision is one round of
    :func:`csagan.metrics.rprecision.r_precision_from_codes` (sentence score) or
    :func:`~csagan.metrics.rprecision.r_precision_from_scores` (word score) with ``ties="miss"``.

    Returns:
        ``{"top1", "r_precision", "chance_top1", "chance_r_precision", "n_queries",
        "n_candidates"}``.
    """
    text_encoder, image_encoder = _encoders_of(loaded_or_modules)
    n_items = len(dataset)
    if n_items < 2:
        raise ValueError(f"retrieval needs at least 2 items in the dataset, got {n_items}.")
    if n_candidates < 2:
        raise ValueError(f"n_candidates must be >= 2 (the true caption and a competitor), got {n_candidates}.")
    n = n_items if n_queries is None else min(int(n_queries), n_items)
    if n < 2:
        raise ValueError(f"n_queries must be >= 2, got {n_queries}.")
    gen = torch.Generator().manual_seed(int(seed))
    indices = torch.randperm(n_items, generator=gen)[:n].sort().values.tolist()
    regions, code, words, sent, lens = encode_items(text_encoder, image_encoder, dataset, indices, batch_size)
    scores = similarity_matrix(regions, code, words, sent, lens, score, gamma1, gamma2)  # [N, N]
    true = scores.diagonal()
    others = scores.clone()
    others.fill_diagonal_(float("-inf"))
    top1 = (true > others.max(dim=1).values).float().mean()
    n_cand = min(int(n_candidates), n)
    rprec = _r_precision(score, code, sent, scores, n_cand, seed)
    return {
        "top1": float(top1),
        "r_precision": rprec,
        "chance_top1": 1.0 / n,
        "chance_r_precision": 1.0 / n_cand,
        "n_queries": float(n),
        "n_candidates": float(n_cand),
    }


# ----------------------------------------------------------------------------- pretraining

PRETRAIN_DEFAULTS: dict[str, Any] = {
    "image_encoder": "small_cnn",
    "inception_weights": None,
    "image_size": 64,
    "ndf": 32,
    "batch_size": 48,
    "epochs": 10,
    "max_steps": None,
    "lr": 0.002,
    "betas": (0.5, 0.999),
    "lr_decay": 0.98,
    "rnn_grad_clip": 0.25,
    "gamma1": 4.0,
    "gamma2": 5.0,
    "gamma3": 10.0,
    "word_score_mode": "code",
    "reduction": "mean",
    "seed": 0,
    "device": "auto",
    "num_workers": 0,
    "log_every": 10,
    "eval_every_epoch": True,
    "eval_queries": 1000,
    "eval_candidates": 100,
    "resume": True,
    "progress": True,
}
"""Every setting of :func:`pretrain_damsm` and its default (AttnGAN's recipe, small CNN).

``gamma1``/``gamma2``/``gamma3`` are γ1-γ3 of Eqs. (7)-(9); ``word_score_mode`` is the reading of
Eq. (8) (``"code"``: AttnGAN's ``log Σ exp(γ2 R)``; ``"paper"``: with the printed 1/γ2) and
``reduction`` that of Eqs. (10)-(11) (``"mean"`` over the batch as AttnGAN; ``"sum"`` as printed):
:class:`csagan.damsm.DAMSMConfig`. Set them with ``--set word_score_mode=paper --set reduction=sum``."""

DAMSM_PRESETS: dict[str, dict[str, Any]] = {
    # ToyBirds on a 2-core CPU: small CNN at 64 px, batch 24 (the word-level loss grows as B²).
    # Measured: 14 epochs (5152 steps) took 29 min on one thread of a shared 2-core machine and
    # reached 17.6 % test R-precision (chance 1 %; csagan.pretrain's docstring, "Measured").
    "toybirds-cpu": {
        "image_encoder": "small_cnn",
        "image_size": 64,
        "ndf": 32,
        "batch_size": 24,
        "epochs": 14,
        "lr": 0.002,
        "eval_queries": 500,
    },
    # AttnGAN's CUB DAMSM: ImageNet Inception-v3 (local weights file), 299 px, batch 48,
    # 200 epochs (the released file is text_encoder200.pth).
    "cub": {
        "image_encoder": "inception",
        "image_size": 299,
        "batch_size": 48,
        "epochs": 200,
        "lr": 0.002,
        "num_workers": 4,
    },
    # COCO: the same recipe; AttnGAN released text_encoder100.pth (100 epochs).
    "coco": {
        "image_encoder": "inception",
        "image_size": 299,
        "batch_size": 48,
        "epochs": 100,
        "lr": 0.002,
        "num_workers": 4,
    },
}
"""Named settings for ``csagan pretrain-damsm --config NAME``."""


def damsm_settings(preset: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The full settings of a preset (``None``: :data:`PRETRAIN_DEFAULTS`) with ``overrides``.

    Raises:
        ValueError: unknown preset or setting names (the valid ones are listed).
    """
    settings = dict(PRETRAIN_DEFAULTS)
    if preset is not None:
        if preset not in DAMSM_PRESETS:
            raise ValueError(f"unknown DAMSM preset {preset!r}; choose one of {sorted(DAMSM_PRESETS)}.")
        settings.update(DAMSM_PRESETS[preset])
    unknown = sorted(set(overrides) - set(PRETRAIN_DEFAULTS))
    if unknown:
        raise ValueError(
            f"unknown DAMSM pretraining setting(s) {unknown}; valid names: {sorted(PRETRAIN_DEFAULTS)}."
        )
    settings.update(overrides)
    if "image_size" not in overrides and settings["image_encoder"] == "inception" and preset is None:
        settings["image_size"] = 299
    return settings


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """Parse CLI ``--set key=value`` strings into typed overrides for :func:`damsm_settings`.

    Values are read as JSON when possible (``3``, ``0.5``, ``true``, ``null``, ``[0.5, 0.999]``)
    and kept as strings otherwise (``device=cpu``).

    Raises:
        ValueError: a pair without ``=`` or an unknown name.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value, got {pair!r} (e.g. --set epochs=5).")
        key, raw = pair.split("=", 1)
        key = key.strip().replace("-", "_")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        out[key] = value
    unknown = sorted(set(out) - set(PRETRAIN_DEFAULTS))
    if unknown:
        raise ValueError(
            f"unknown DAMSM pretraining setting(s) {unknown}; valid names: {sorted(PRETRAIN_DEFAULTS)}."
        )
    return out


#: Settings that may differ between a pretraining run and its resumption (they do not change the numbers).
_RESUMABLE_SETTINGS = frozenset({"epochs", "max_steps", "num_workers", "log_every", "eval_every_epoch", "progress",
                                 "resume", "device"})


def _check_pretrain_settings(saved: dict[str, Any] | None, cfg: dict[str, Any], ckpt_path: Path) -> None:
    """Refuse to resume a DAMSM pretraining with other settings (as ``csagan train --resume`` does)."""
    if not isinstance(saved, dict):
        return
    current = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
    # a setting a checkpoint of an older csagan lacks (e.g. reduction) was trained with its default
    saved = {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in PRETRAIN_DEFAULTS.items()}, **saved}
    diffs = [f"{k}: {saved.get(k, '<missing>')!r} -> {current.get(k, '<missing>')!r}"
             for k in sorted(set(saved) | set(current))
             if k not in _RESUMABLE_SETTINGS and saved.get(k, "<missing>") != current.get(k, "<missing>")]
    if diffs:
        raise ValueError(
            f"cannot resume the DAMSM pretraining in {ckpt_path.parent}: its {ckpt_path.name} was written with other "
            f"settings ({'; '.join(diffs)}); rerun with the same --config/--set, pass --set resume=false to start "
            "afresh in that folder, or choose another --out."
        )


def _damsm_config(cfg: dict[str, Any]) -> Any:
    """The :class:`csagan.damsm.DAMSMConfig` of pretraining settings (γ1-γ3, Eq. 8 reading, reduction).

    Raises:
        ValueError: a γ that is not a positive number, or an unknown word_score_mode / reduction.
    """
    from csagan.damsm import DAMSMConfig

    try:
        gammas = {k: float(cfg[k]) for k in ("gamma1", "gamma2", "gamma3")}
    except (TypeError, ValueError):
        bad = {k: cfg[k] for k in ("gamma1", "gamma2", "gamma3")}
        raise ValueError(f"gamma1, gamma2 and gamma3 must be numbers > 0, got {bad}.") from None
    return DAMSMConfig(**gammas, word_score_mode=cfg["word_score_mode"], reduction=cfg["reduction"])


def lr_at_epoch(epoch: int, lr: float, decay: float) -> float:
    """AttnGAN's schedule: ``lr · decay^epoch``, never below ``lr / 10``."""
    return max(lr * decay**epoch, lr / 10.0)




def _append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


@torch.no_grad()
def evaluate_loss(damsm_model: Any, loader: Any, device: torch.device) -> dict[str, float]:
    """Mean DAMSM losses (Eq. 12 and its four terms) over a loader, with the encoders in eval mode."""
    sums = {"w1": 0.0, "w2": 0.0, "s1": 0.0, "s2": 0.0}
    n_batches = 0
    for batch in loader:
        batch = batch.to(device)
        losses = damsm_model(batch.images, batch.captions, batch.cap_lens, batch.class_ids)
        for key in sums:
            sums[key] += float(getattr(losses, key))
        n_batches += 1
    if n_batches == 0:
        return {}
    out = {k: v / n_batches for k, v in sums.items()}
    out["loss"] = out["w1"] + out["w2"] + out["s1"] + out["s2"]
    return out


def train_step(model: Any, optimizer: torch.optim.Optimizer, batch: Any, rnn_grad_clip: float = 0.25) -> Any:
    """One optimiser step on L_DAMSM (Eq. 12) of a batch; returns the (detached) :class:`DAMSMLosses`.

    ``model`` is a :class:`csagan.damsm.DAMSM` in train mode, ``batch`` a
    :class:`~csagan.data.datasets.TextImageBatch` on the model's device; same-class pairs are not
    negatives. The text encoder's gradient norm is clipped at ``rnn_grad_clip`` (AttnGAN).
    """
    from csagan.damsm import DAMSMLosses

    losses = model(batch.images, batch.captions, batch.cap_lens, batch.class_ids)
    optimizer.zero_grad(set_to_none=True)
    losses.total.backward()
    torch.nn.utils.clip_grad_norm_(model.text_encoder.parameters(), rnn_grad_clip)
    optimizer.step()
    return DAMSMLosses(*(t.detach() for t in losses))


def pretrain_damsm(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    preset: str | None = None,
    **overrides: Any,
) -> Path:
    """Pretrain a DAMSM (text encoder + image encoder) with AttnGAN's recipe; returns ``out_dir``.

    Settings are :data:`PRETRAIN_DEFAULTS`, updated by the named ``preset`` (:data:`DAMSM_PRESETS`)
    and then by keyword ``overrides``; unknown names raise ``ValueError``. The recipe
    (AttnGAN's DAMSM pretraining): L_DAMSM = L^w_1 + L^w_2 + L^s_1 + L^s_2 (Eq. 12) with
    γ1 = 4, γ2 = 5, γ3 = 10, AttnGAN's reading of Eq. 8 and the batch mean in Eqs. 10-11 (settings
    ``gamma1``-``gamma3``, ``word_score_mode``, ``reduction``) and same-class negatives masked;
    Adam (lr 0.002, β = (0.5, 0.999))
    over the text encoder and the image encoder's trainable parameters (Inception: only
    ``emb_features`` / ``emb_cnn_code``; small CNN: all); lr × 0.98 per epoch, floor lr/10;
    gradient norm of the text encoder clipped at 0.25; batches of 48 with the last partial batch
    dropped.

    Writes into ``out_dir``: ``metrics.jsonl`` (``{"kind": "train", step, epoch, w1, w2, s1, s2,
    total, lr}`` every ``log_every`` steps, and per epoch ``{"kind": "eval", "split": "test",
    step, epoch, loss, w1.., top1, r_precision, ...}`` from :func:`retrieval_accuracy`),
    ``checkpoint.pt`` (atomically, after every epoch; with ``resume`` a run continues from it)
    and finally the DAMSM folder files via :func:`save_damsm`.

    ``max_steps`` stops after that many optimiser steps (in total, counting resumed ones).
    Seeding uses a forked RNG (the caller's global RNG state is restored afterwards).

    Raises:
        ValueError: bad settings; FileNotFoundError: missing data or Inception weights.
    """
    cfg = damsm_settings(preset, **overrides)
    _damsm_config(cfg)  # bad γ / word_score_mode / reduction: one-line error before any data is read
    kind = cfg["image_encoder"]
    if kind not in IMAGE_ENCODER_KINDS:
        raise ValueError(f"image_encoder must be one of {list(IMAGE_ENCODER_KINDS)}, got {kind!r}.")
    if kind == "inception" and not cfg["inception_weights"]:
        raise ValueError(
            "image_encoder='inception' needs inception_weights: the local path of torchvision's "
            "inception_v3_google-0cc3c7bd.pth (ImageNet Inception-v3); nothing is downloaded."
        )
    for name in ("batch_size", "epochs"):
        if int(cfg[name]) < 1:
            raise ValueError(f"{name} must be >= 1, got {cfg[name]}.")
    if cfg["max_steps"] is not None and int(cfg["max_steps"]) < 1:
        raise ValueError(f"max_steps must be >= 1 or None, got {cfg['max_steps']}.")
    device = resolve_device(cfg["device"])
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(int(cfg["seed"]))
        from csagan.atomic import remove_orphan_tmp_files
        from csagan.runlock import folder_lock

        with folder_lock(out_dir, "csagan pretrain-damsm"):
            remove_orphan_tmp_files(out_dir)
            return _pretrain(Path(data_dir), Path(out_dir), cfg, device)


def _pretrain(data_dir: Path, out_dir: Path, cfg: dict[str, Any], device: torch.device) -> Path:
    from torch.utils.data import DataLoader

    from csagan.damsm import DAMSM
    from csagan.data.datasets import EpochSampler, TextImageDataset, collate, warn_if_single_class

    seed = int(cfg["seed"])
    image_size = int(cfg["image_size"])
    train_set = TextImageDataset(data_dir, "train", image_size=image_size, seed=seed)
    warn_if_single_class(train_set.class_ids, data_dir, "train")
    test_set: TextImageDataset | None
    try:
        test_set = TextImageDataset(data_dir, "test", image_size=image_size, transform="eval", seed=seed)
    except FileNotFoundError:
        test_set = None
    batch_size = int(cfg["batch_size"])
    if len(train_set) < batch_size:
        raise ValueError(
            f"the train split of {data_dir} has {len(train_set)} images, fewer than batch_size="
            f"{batch_size}; lower batch_size."
        )
    if len(train_set) < 2:
        raise ValueError(f"DAMSM training needs at least 2 training images, {data_dir} has {len(train_set)}.")

    text_encoder = RNNEncoder(train_set.n_words).to(device)
    image_encoder: nn.Module
    if cfg["image_encoder"] == "inception":
        image_encoder = InceptionEncoder.from_imagenet(cfg["inception_weights"])
    else:
        image_encoder = SmallCNNEncoder(image_size=image_size, ndf=int(cfg["ndf"]))
    image_encoder = image_encoder.to(device)
    model = DAMSM(text_encoder, image_encoder, _damsm_config(cfg))
    params = _trainable(text_encoder) + _trainable(image_encoder)
    optimizer = torch.optim.Adam(params, lr=float(cfg["lr"]), betas=tuple(cfg["betas"]))  # type: ignore[arg-type]

    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / METRICS_FILE
    ckpt_path = out_dir / "checkpoint.pt"
    start_epoch, step = 0, 0
    if cfg["resume"] and ckpt_path.is_file():
        from csagan.safe_load import load_torch_file

        state = load_torch_file(
            ckpt_path, what="a DAMSM pretraining checkpoint", map_location=device,
            fix="delete it to start afresh (or pass --set resume=false), or choose another --out folder.",
        )
        _check_pretrain_settings(state.get("settings"), cfg, ckpt_path)
        text_encoder.load_state_dict(state["text_encoder"])
        image_encoder.load_state_dict(state["image_encoder"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, step = int(state["epoch"]) + 1, int(state["step"])
    elif metrics_path.exists():
        metrics_path.unlink()  # a fresh run starts a fresh log

    sampler = EpochSampler(len(train_set), seed=seed, shuffle=True, with_epoch=True)
    loader = DataLoader(
        train_set,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate,
        drop_last=True,
        num_workers=int(cfg["num_workers"]),
    )
    max_steps = None if cfg["max_steps"] is None else int(cfg["max_steps"])
    epochs = int(cfg["epochs"])
    log_every = max(1, int(cfg["log_every"]))
    captions_sha = file_sha256(train_set.captions_path) if train_set.captions_path else ""
    progress = None
    if cfg["progress"]:
        from tqdm import tqdm

        total = epochs * len(loader) if max_steps is None else min(max_steps, epochs * len(loader))
        progress = tqdm(total=total, initial=min(step, total), desc="DAMSM", unit="step")
    last_epoch = start_epoch - 1
    for epoch in range(start_epoch, epochs):
        if max_steps is not None and step >= max_steps:
            break
        lr = lr_at_epoch(epoch, float(cfg["lr"]), float(cfg["lr_decay"]))
        for group in optimizer.param_groups:
            group["lr"] = lr
        sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        model.train()
        for batch in loader:
            losses = train_step(model, optimizer, batch.to(device), float(cfg["rnn_grad_clip"]))
            step += 1
            if step == 1 or step % log_every == 0:
                record = {"kind": "train", "step": step, "epoch": epoch, "lr": lr}
                record.update({k: float(getattr(losses, k)) for k in ("w1", "w2", "s1", "s2")})
                record["total"] = float(losses.total)
                _append_jsonl(metrics_path, record)
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{float(losses.total):.3f}")
            if max_steps is not None and step >= max_steps:
                break
        last_epoch = epoch
        if cfg["eval_every_epoch"] and test_set is not None and len(test_set) >= 2:
            _append_jsonl(metrics_path, _eval_record(model, test_set, cfg, device, step, epoch))
        atomic_torch_save(
            {
                "text_encoder": text_encoder.state_dict(),
                "image_encoder": image_encoder.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "step": step,
                "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
            },
            ckpt_path,
        )
    if progress is not None:
        progress.close()
    return save_damsm(
        out_dir,
        text_encoder,
        image_encoder,
        train_set.vocab,
        gamma1=float(cfg["gamma1"]),
        gamma2=float(cfg["gamma2"]),
        gamma3=float(cfg["gamma3"]),
        captions_pickle_sha256=captions_sha,
        epochs=last_epoch + 1,
        step=step,
        extra_meta={"data_dir": str(data_dir), "word_score_mode": cfg["word_score_mode"],
                    "reduction": cfg["reduction"]},
    )


def _eval_record(
    model: Any, test_set: Any, cfg: dict[str, Any], device: torch.device, step: int, epoch: int
) -> dict[str, Any]:
    from torch.utils.data import DataLoader, Subset

    from csagan.data.datasets import collate

    model.eval()
    subset: Any = test_set
    n_eval = cfg["eval_queries"]
    if n_eval is not None and int(n_eval) < len(test_set):
        gen = torch.Generator().manual_seed(int(cfg["seed"]))
        picks = torch.randperm(len(test_set), generator=gen)[: int(n_eval)].sort().values.tolist()
        subset = Subset(test_set, picks)
    loader = DataLoader(subset, batch_size=int(cfg["batch_size"]), shuffle=False, collate_fn=collate)
    record: dict[str, Any] = {"kind": "eval", "split": "test", "step": step, "epoch": epoch}
    record.update(evaluate_loss(model, loader, device))
    record.update(
        retrieval_accuracy(
            (model.text_encoder, model.image_encoder),
            test_set,
            n_candidates=int(cfg["eval_candidates"]),
            n_queries=cfg["eval_queries"],
            seed=int(cfg["seed"]),
            batch_size=int(cfg["batch_size"]),
        )
    )
    model.train()
    return record
