"""The reproduction study's figures: every variant draws the same captions with the same noise.

One job: turn the study's run folders (``<runs>/<variant>/seed<k>``, :mod:`csagan.study.runner`) into
small image files that the book can show without the run folders (which are large and not
shipped). For each variant found, :func:`render_study_figures` writes

* ``<variant>_samples.png``: a tile grid without padding, one row per caption, ``n_per_caption``
  samples per row (``image_size`` pixels per tile), the same truncated noise for every variant
  (the paper's Fig. 4 is this comparison);
* ``<variant>_masks.png`` (variants with SSF masks only): one row per caption (its first sample),
  one grey tile per generator stage, the stage's mask upsampled (nearest) to ``image_size``
  (Fig. 6);
* ``figures.json``: the captions, the test images they come from, the noise seed, each variant's
  training step, the mean mask inside the central half of the image against the border, and for
  variants with CSA how much of the sentence survives in the sampled code
  (:func:`csagan.csa.code_signal` on :func:`first_caption_codes`, :data:`csagan.study.scoring.CSA_CAPTIONS` test captions).

:func:`load_study_figures` reads them back as tensors in [−1, 1] (samples) and [0, 1] (masks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from csagan.csa import code_signal
from csagan.data.datasets import TextImageDataset
from csagan.sample import mask_centre_border, sample_images
from csagan.study.config import STUDY_VARIANTS
from csagan.study.scoring import first_caption_codes
from csagan.study.runner import run_dir
from csagan.train.run import load_run

__all__ = ["N_CAPTIONS", "StudyFigures", "load_study_figures", "render_study_figures"]

#: Captions drawn by default: the first captions of this many test images, evenly spaced over
#: the test split (so over its species, which are stored in order).
N_CAPTIONS = 6


def _tiles_to_png(tiles: Tensor, ncol: int, path: Path, grey: bool = False) -> None:
    """Write [N, C, s, s] values in [0, 1] as an (N / ncol) × ncol grid without padding."""
    n, c, s, _ = tiles.shape
    rows = n // ncol
    grid = tiles.reshape(rows, ncol, c, s, s).permute(0, 3, 1, 4, 2).reshape(rows * s, ncol * s, c)
    arr = (grid.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    Image.fromarray(arr[..., 0] if grey else arr, mode="L" if grey else "RGB").save(path, optimize=True)


def _png_to_tiles(path: Path, size: int) -> Tensor:
    """Inverse of :func:`_tiles_to_png`: [rows, ncol, C, size, size] in [0, 1]."""
    arr = np.asarray(Image.open(path))
    if arr.ndim == 2:
        arr = arr[..., None]
    h, w, c = arr.shape
    if h % size or w % size:
        raise ValueError(f"{path}: {w}x{h} pixels is not a grid of {size}-pixel tiles; re-render the figures.")
    t = torch.from_numpy(arr.copy()).float() / 255.0
    return t.reshape(h // size, size, w // size, size, c).permute(0, 2, 4, 1, 3)


def render_study_figures(
    runs_dir: str | Path,
    out_dir: str | Path,
    data_dir: str | Path,
    *,
    seed: int = 0,
    picks: tuple[int, ...] | None = None,
    n_per_caption: int = 4,
    noise_seed: int = 0,
    variants: tuple[str, ...] | None = None,
) -> Path:
    """Draw the same captions with the same noise for every variant's ``seed<seed>`` run.

    Args:
        runs_dir: the study's ``--runs`` folder (``<runs>/<variant>/seed<k>`` run folders).
        out_dir: where the PNG files and ``figures.json`` go.
        data_dir: the ToyBirds root (its test captions are drawn).
        seed: which training seed's runs to draw.
        picks: test-image indices whose first captions are drawn (default: :data:`N_CAPTIONS`
            evenly spaced ones).
        n_per_caption: samples per caption.
        noise_seed: seed of the truncated noise (the same for every variant).
        variants: which variants (default: every :data:`csagan.study.STUDY_VARIANTS` that has a
            finished run folder).

    Returns:
        the path of ``figures.json``.

    Raises:
        FileNotFoundError: no finished run folder for any requested variant.
    """

    runs, out = Path(runs_dir), Path(out_dir)
    wanted = variants if variants is not None else STUDY_VARIANTS
    found = [v for v in wanted if (run_dir(runs, v, seed) / "generator.pt").is_file()]
    if not found:
        raise FileNotFoundError(
            f"no finished study run under {runs} for seed {seed} (looked for <variant>/seed{seed}/generator.pt); "
            "run `csagan study run` first."
        )
    out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"seed": seed, "noise_seed": noise_seed, "n_per_caption": n_per_caption, "variants": {}}
    data = None
    for variant in found:
        run = load_run(run_dir(runs, variant, seed))
        size = run.model_config.image_size
        if data is None:
            data = TextImageDataset(data_dir, split="test", image_size=size, transform="eval")
            if picks is None:
                picks = tuple(int(i) for i in np.linspace(0, len(data) - 1, N_CAPTIONS).round())
            bad = [i for i in picks if not 0 <= i < len(data)]
            if bad:
                raise ValueError(f"picks {bad} are outside the {len(data)} test images of {data_dir}.")
            meta["picks"] = list(picks)
            meta["captions"] = [data.caption_texts(i)[0] for i in picks]
            meta["image_size"] = size
        res = sample_images(run.generator, run.text_encoder, run.vocab, meta["captions"],
                            n_per_caption=n_per_caption, seed=noise_seed)  # fmt: skip
        _tiles_to_png((res.images + 1) / 2, n_per_caption, out / f"{variant}_samples.png")
        entry: dict[str, Any] = {"step": run.step, "masks": len(res.masks)}
        if res.masks:
            first = slice(0, None, n_per_caption)
            tiles = torch.stack(
                [F.interpolate(m[first], size=(size, size), mode="nearest")[:, 0] for m in res.masks], dim=1
            ).reshape(-1, 1, size, size)
            _tiles_to_png(tiles, len(res.masks), out / f"{variant}_masks.png", grey=True)
            entry["mask_sides"] = [int(m.shape[-1]) for m in res.masks]
            entry["mask_centre_border"] = [[round(a, 4), round(b, 4)] for a, b in mask_centre_border(res.masks, size)]
        if run.generator.csa is not None:
            signal = code_signal(run.generator.csa, first_caption_codes(run, data), seed=0)
            entry["csa"] = {k: round(v, 4) for k, v in signal._asdict().items()}
        meta["variants"][variant] = entry
    path = out / "figures.json"
    path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path


@dataclass
class StudyFigures:
    """What :func:`render_study_figures` wrote, read back.

    Attributes:
        captions: the drawn captions (one per row).
        picks: the test images they are the first captions of.
        samples: variant -> [rows, n_per_caption, 3, s, s] in [−1, 1].
        masks: variant -> [rows, stages, 1, s, s] in [0, 1] (variants with masks only).
        meta: the whole ``figures.json``.
    """

    captions: list[str]
    picks: list[int]
    samples: dict[str, Tensor]
    masks: dict[str, Tensor]
    meta: dict[str, Any]


def load_study_figures(folder: str | Path) -> StudyFigures:
    """Read the figures of :func:`render_study_figures` from ``folder``.

    Raises:
        FileNotFoundError: ``figures.json`` or one of the PNG files it lists is missing.
    """
    folder = Path(folder)
    path = folder / "figures.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; make it with `csagan study figures` (part of `make reproduce`).")
    meta = json.loads(path.read_text(encoding="utf-8"))
    size = int(meta["image_size"])
    samples, masks = {}, {}
    for variant, entry in meta["variants"].items():
        png = folder / f"{variant}_samples.png"
        if not png.is_file():
            raise FileNotFoundError(f"{png} not found (listed in {path}); re-render with `csagan study figures`.")
        samples[variant] = _png_to_tiles(png, size) * 2 - 1
        if entry.get("masks"):
            masks[variant] = _png_to_tiles(folder / f"{variant}_masks.png", size)
    return StudyFigures(list(meta["captions"]), list(meta["picks"]), samples, masks, meta)
