"""The torch dataset over an AttnGAN-layout dataset (CUB, COCO, ToyBirds): items, batches, epochs.

The files are read by :mod:`csagan.data.layout` (layout, images) and :mod:`csagan.data.captions`.

Randomness (caption choice, word sub-sampling, random crop, flip) comes from a
generator seeded by ``(seed, epoch, index)`` only, so results do not depend on worker
processes or on the order items are read, and a resumed run that calls
:meth:`TextImageDataset.set_epoch` sees the same data as the original one.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from csagan.data.captions import CAPTIONS_PICKLE_NAMES, load_or_build_captions
from csagan.data.errors import (
    LayoutError,
    VocabularyMismatchError,
)
from csagan.data.layout import (
    DEFAULT_CAPTIONS_PER_IMAGE,
    PREPARE_HINT,
    DatasetKind,
    TransformName,
    apply_transform,
    crop_to_bbox,
    detect_dataset,
    find_image,
    images_dir,
    load_image,
    read_attributes,
    read_bounding_boxes,
    read_class_ids,
    read_dataset_info,
    read_filenames,
)
from csagan.data.text import (
    WORDS_NUM,
    Vocabulary,
    fixed_length_caption,
)

__all__ = [
    "EpochSampler",
    "TextImageBatch",
    "TextImageDataset",
    "TextImageItem",
    "collate",
    "item_generator",
]

def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A CPU generator seeded from ``(seed, epoch, index)`` only (worker- and order-independent)."""
    if seed < 0 or epoch < 0 or index < 0:
        raise ValueError(f"seed, epoch and index must be >= 0, got {seed}, {epoch}, {index}")
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


@dataclass
class TextImageItem:
    """One dataset item: an image and one of its captions."""

    image: torch.Tensor  # float [3, S, S] in [-1, 1]
    caption: torch.Tensor  # long [T], 0-padded
    cap_len: int
    class_id: int
    key: str
    caption_index: int  # which of the N captions (0..N-1)
    index: int  # position in the split


@dataclass
class TextImageBatch:
    """A collated batch (nothing sorted; training code sorts for packed sequences)."""

    images: torch.Tensor  # [B, 3, S, S]
    captions: torch.Tensor  # [B, T] long
    cap_lens: torch.Tensor  # [B] long
    class_ids: torch.Tensor  # [B] long
    caption_indices: torch.Tensor  # [B] long
    indices: torch.Tensor  # [B] long
    keys: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.keys)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> TextImageBatch:
        """Move every tensor to ``device``."""
        mv = {
            name: getattr(self, name).to(device, non_blocking=non_blocking)
            for name in ("images", "captions", "cap_lens", "class_ids", "caption_indices", "indices")
        }
        return TextImageBatch(keys=list(self.keys), **mv)

    def pin_memory(self) -> TextImageBatch:
        """Pinned copy (called by ``DataLoader(pin_memory=True)``)."""
        mv = {
            name: getattr(self, name).pin_memory()
            for name in ("images", "captions", "cap_lens", "class_ids", "caption_indices", "indices")
        }
        return TextImageBatch(keys=list(self.keys), **mv)


def collate(items: Sequence[TextImageItem]) -> TextImageBatch:
    """Stack items into a :class:`TextImageBatch`, in the given order."""
    if not items:
        raise ValueError("collate() got an empty list of items")
    return TextImageBatch(
        images=torch.stack([it.image for it in items]),
        captions=torch.stack([it.caption for it in items]),
        cap_lens=torch.tensor([it.cap_len for it in items], dtype=torch.long),
        class_ids=torch.tensor([it.class_id for it in items], dtype=torch.long),
        caption_indices=torch.tensor([it.caption_index for it in items], dtype=torch.long),
        indices=torch.tensor([it.index for it in items], dtype=torch.long),
        keys=[it.key for it in items],
    )


class TextImageDataset(Dataset[TextImageItem]):
    """Images with captions from an AttnGAN-layout CUB/COCO root (one random caption per item).

    Args:
        root: dataset root (module docstring).
        split: ``"train"`` or ``"test"``.
        image_size: side ``S`` of the returned images.
        dataset: ``"birds"``, ``"coco"`` or ``"auto"`` (detected from the folders).
        captions_per_image: ``N``; ``None`` = ``csagan_dataset.json`` or 10 (birds) / 5 (coco).
        words_num: fixed caption length ``T`` (18).
        transform: ``"train"`` (random crop + flip), ``"eval"`` (centre crop) or ``None``
            (``"train"`` for the train split, ``"eval"`` otherwise).
        seed: base seed of the per-item generators.
        captions_pickle: explicit captions pickle (default: found under ``root`` or built).
        check_pickle: compare a sample of the pickle's captions with the text files.
        cache_pickle: write the built captions to ``<root>/captions_DAMSM.pickle``.

    Items are :class:`TextImageItem`; use :func:`collate` in the ``DataLoader``.  An index
    may also be a tuple ``(index, epoch)`` (see :class:`EpochSampler`), which overrides the
    epoch set with :meth:`set_epoch` (useful with persistent workers).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        image_size: int = 64,
        dataset: Literal["birds", "coco", "auto"] = "auto",
        captions_per_image: int | None = None,
        words_num: int = WORDS_NUM,
        transform: TransformName | None = None,
        seed: int = 0,
        *,
        captions_pickle: str | Path | None = None,
        check_pickle: bool = True,
        cache_pickle: bool = True,
    ) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if dataset not in ("birds", "coco", "auto"):
            raise ValueError(f"dataset must be 'birds', 'coco' or 'auto', got {dataset!r}")
        if transform not in (None, "train", "eval"):
            raise ValueError(f"transform must be None, 'train' or 'eval', got {transform!r}")
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        if words_num < 1:
            raise ValueError(f"words_num must be >= 1, got {words_num}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.root = Path(root)
        kind = detect_dataset(self.root)  # also checks that root exists
        self.kind: DatasetKind = kind if dataset == "auto" else dataset
        info = read_dataset_info(self.root)
        if captions_per_image is None:
            captions_per_image = int(info.get("captions_per_image", DEFAULT_CAPTIONS_PER_IMAGE[self.kind]))
        if captions_per_image < 1:
            raise ValueError(f"captions_per_image must be >= 1, got {captions_per_image}")
        img_dir = images_dir(self.root, self.kind)
        if not img_dir.is_dir():
            raise LayoutError(
                f"images folder not found: {img_dir} (AttnGAN {self.kind} layout); {PREPARE_HINT}."
            )
        self.split = split
        self.image_size = image_size
        self.captions_per_image = captions_per_image
        self.words_num = words_num
        self.transform_name: TransformName = transform or ("train" if split == "train" else "eval")
        self.seed = seed
        self.epoch = 0
        self._images_dir = img_dir
        self.keys = read_filenames(self.root, split)
        self.class_ids = read_class_ids(self.root, split, self.keys, self.kind)
        keys_by_split: dict[str, Sequence[str]] = {split: self.keys}
        other = "test" if split == "train" else "train"
        other_file = self.root / other / "filenames.pickle"
        if other_file.is_file():
            keys_by_split[other] = read_filenames(self.root, other)
        found_pickle = captions_pickle is not None or any(
            (self.root / name).is_file() for name in CAPTIONS_PICKLE_NAMES
        )
        if not found_pickle and other not in keys_by_split:
            raise LayoutError(
                f"{other_file} not found: building the vocabulary needs the keys of both splits "
                f"(AttnGAN layout); {PREPARE_HINT}."
            )
        data = load_or_build_captions(
            self.root,
            keys_by_split,
            captions_per_image,
            captions_pickle=captions_pickle,
            check=check_pickle,
            cache=cache_pickle,
        )
        self.captions_path: Path | None = data.path
        self._captions = data.split(split)
        self._vocab: Vocabulary = data.vocab
        if len(self._captions) != len(self.keys) * captions_per_image:
            raise VocabularyMismatchError(
                f"{data.path}: has {len(self._captions)} {split} captions, expected "
                f"{len(self.keys)} x {captions_per_image}; delete it to rebuild it"
            )
        self.bboxes = read_bounding_boxes(self.root) if self.kind == "birds" else None
        if self.bboxes is not None:
            missing = sum(1 for k in self.keys if k not in self.bboxes)
            if missing:
                warnings.warn(
                    f"{missing} of {len(self.keys)} {split} images have no bounding box in "
                    f"{self.root / 'CUB_200_2011' / 'bounding_boxes.txt'}; they are used uncropped",
                    stacklevel=2,
                )
        self.attributes = read_attributes(self.root)
        self._paths: dict[str, Path] = {}

    # ----------------------------------------------------------------- sizes / vocab

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def vocab(self) -> Vocabulary:
        """The vocabulary (``ixtoword``, ``wordtoix``) of the captions pickle."""
        return self._vocab

    @property
    def n_words(self) -> int:
        """Vocabulary size (including ``<end>``)."""
        return len(self._vocab)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random choices ``__getitem__`` makes (seed, epoch, index)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    # ----------------------------------------------------------------- captions

    def captions_of(self, index: int) -> list[list[int]]:
        """All ``N`` captions of item ``index`` as word-index lists (full length)."""
        n = self.captions_per_image
        return [list(c) for c in self._captions[index * n : (index + 1) * n]]

    def caption_texts(self, index: int) -> list[str]:
        """All ``N`` captions of item ``index`` decoded to text (tokenised words)."""
        return [" ".join(self._vocab.decode(c, stop_at_end=False)) for c in self.captions_of(index)]

    def encode(self, text: str) -> tuple[torch.Tensor, int]:
        """Tokenise free text with this vocabulary (see :meth:`Vocabulary.encode_text`)."""
        return self._vocab.encode_text(text, self.words_num)

    # ----------------------------------------------------------------- images

    def image_path(self, index: int) -> Path:
        """Path of the image of item ``index`` (first existing candidate).

        Raises:
            ImageReadError: no candidate file exists (the candidates are named).
        """
        key = self.keys[index]
        cached = self._paths.get(key)
        if cached is None:
            cached = find_image(self.root, self.kind, key)
            self._paths[key] = cached
        return cached

    def load_pil(self, index: int) -> Image.Image:
        """The image of item ``index``, RGB, cropped to its bounding box when one exists."""
        img = load_image(self.image_path(index))
        if self.bboxes is not None:
            box = self.bboxes.get(self.keys[index])
            if box is not None:
                img = crop_to_bbox(img, box)
        return img

    # ----------------------------------------------------------------- items

    def __getitem__(self, idx: int | tuple[int, int]) -> TextImageItem:
        if isinstance(idx, tuple):
            index, epoch = int(idx[0]), int(idx[1])
        else:
            index, epoch = int(idx), self.epoch
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        gen = item_generator(self.seed, epoch, index)
        n = self.captions_per_image
        k = int(torch.randint(0, n, (1,), generator=gen))
        caption, length = fixed_length_caption(self._captions[index * n + k], self.words_num, gen)
        image = apply_transform(self.load_pil(index), self.image_size, self.transform_name, gen)
        return TextImageItem(
            image=image,
            caption=caption,
            cap_len=length,
            class_id=self.class_ids[index],
            key=self.keys[index],
            caption_index=k,
            index=index,
        )


class EpochSampler(Sampler[Any]):
    """A reproducible shuffling sampler: the order of epoch ``e`` depends on ``(seed, e)`` only.

    Call :meth:`set_epoch` at the start of every epoch (also when resuming).  With
    ``with_epoch=True`` it yields ``(index, epoch)`` tuples that :class:`TextImageDataset`
    accepts, so random choices follow the epoch even in persistent worker processes.
    """

    def __init__(self, n_items: int, seed: int = 0, shuffle: bool = True, with_epoch: bool = False) -> None:
        if n_items < 0:
            raise ValueError(f"n_items must be >= 0, got {n_items}")
        self.n_items = n_items
        self.seed = seed
        self.shuffle = shuffle
        self.with_epoch = with_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order is produced next."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def order(self, epoch: int | None = None) -> list[int]:
        """The item order of ``epoch`` (default: the current one)."""
        e = self.epoch if epoch is None else epoch
        if not self.shuffle:
            return list(range(self.n_items))
        gen = item_generator(self.seed, e, 2**32)  # an index no item uses
        return torch.randperm(self.n_items, generator=gen).tolist()

    def __iter__(self) -> Iterator[Any]:
        if self.with_epoch:
            return iter([(i, self.epoch) for i in self.order()])
        return iter(self.order())

    def __len__(self) -> int:
        return self.n_items
