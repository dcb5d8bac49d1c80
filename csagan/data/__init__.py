"""Data layer: AttnGAN-format CUB/COCO loaders, tokenisation, safe pickles, prepare, inspect.

Heavy or optional modules (``toybirds``, ``prepare``, ``inspect``) are imported on
demand: ``from csagan.data.prepare import prepare_cub``.
"""

from csagan.data.datasets import EpochSampler, TextImageBatch, TextImageDataset, TextImageItem, collate
from csagan.data.errors import (
    CaptionError,
    DatasetError,
    ImageReadError,
    LayoutError,
    OutOfVocabularyError,
    PickleFileError,
    UnsafePickleError,
    VocabularyMismatchError,
)
from csagan.data.layout import read_attributes
from csagan.data.safe_pickle import safe_dump_pickle, safe_load_pickle
from csagan.data.text import WORDS_NUM, Vocabulary, build_vocabulary, tokenize

__all__ = [
    "WORDS_NUM",
    "CaptionError",
    "DatasetError",
    "EpochSampler",
    "ImageReadError",
    "LayoutError",
    "OutOfVocabularyError",
    "PickleFileError",
    "TextImageBatch",
    "TextImageDataset",
    "TextImageItem",
    "UnsafePickleError",
    "Vocabulary",
    "VocabularyMismatchError",
    "build_vocabulary",
    "collate",
    "read_attributes",
    "safe_dump_pickle",
    "safe_load_pickle",
    "tokenize",
]
