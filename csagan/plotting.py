"""Figures for the book: image grids, masks (Fig. 6), DAMSM attention, training curves, ToyBirds.

Every function builds a matplotlib :class:`~matplotlib.figure.Figure` with the object-oriented
API on the Agg canvas (no pyplot state, no window) and returns it; save it with
``fig.savefig(path)`` or let Jupyter display it. Images are tensors in [−1, 1] as the models
produce them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from csagan.config import ModelConfig
from csagan.data.datasets import TextImageDataset
from csagan.models import discriminator_channels, generator_channels
from csagan.train.logging import read_metrics

__all__ = [
    "PACKAGE_LAYERS",
    "architecture_diagram",
    "budget_curves",
    "image_grid",
    "learning_curves",
    "package_layers_diagram",
    "read_metrics",
    "show_attention",
    "show_masks",
    "smooth",
    "to_numpy_image",
    "toybirds_examples",
    "training_curves",
    "variant_grid",
]


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def to_numpy_image(image: Tensor) -> np.ndarray:
    """[3, H, W] (or [1, H, W] / [H, W]) in [−1, 1] → float array [H, W, 3] (or [H, W]) in [0, 1]."""
    img = image.detach().float().cpu()
    if img.dim() == 3 and img.shape[0] == 1:
        img = img[0]
    if img.dim() == 3:
        if img.shape[0] != 3:
            raise ValueError(f"an image must be [3, H, W] in [-1, 1], got shape {tuple(img.shape)}.")
        img = img.permute(1, 2, 0)
    elif img.dim() != 2:
        raise ValueError(f"an image must be [3, H, W] or [H, W], got shape {tuple(img.shape)}.")
    arr: np.ndarray = ((img.clamp(-1, 1) + 1) / 2).numpy()
    return arr


def _check_batch(images: Tensor, name: str = "images") -> None:
    if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"{name} must be a tensor [N, 3, H, W] in [-1, 1], got {shape}.")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty; pass at least one image.")


def image_grid(
    images: Tensor, nrow: int = 8, captions: Sequence[str] | None = None, cell: float = 1.6
) -> Any:
    """A grid of images [N, 3, H, W] in [−1, 1], ``nrow`` images per row, optional captions as titles.

    Returns a Figure with one axis per image (N axes).
    """
    _check_batch(images)
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}.")
    n = images.shape[0]
    if captions is not None and len(captions) != n:
        raise ValueError(f"captions has {len(captions)} entries but there are {n} images; pass one per image.")
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    title_h = 0.5 if captions is not None else 0.0
    fig = _figure(cols * cell, rows * (cell + title_h))
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(to_numpy_image(images[i]))
        ax.set_axis_off()
        if captions is not None:
            ax.set_title(_wrap(captions[i], 22), fontsize=6)
    fig.tight_layout()
    return fig


def variant_grid(
    rows: Mapping[str, Tensor], col_titles: Sequence[str] | None = None, cell: float = 1.3
) -> Any:
    """One labelled row of images per model: ``rows`` maps a row label (e.g. a variant name) to
    images [K, 3, H, W] in [−1, 1] (the same K for every row), or [K, 1, H, W] / [K, H, W] masks
    in [0, 1] shown in grey; ``col_titles`` (K entries) go above the first row.

    Returns a Figure with len(rows) · K axes (the paper's Fig. 4 layout).
    """
    if not rows:
        raise ValueError("variant_grid needs at least one row.")
    ks = {label: int(t.shape[0]) for label, t in rows.items()}
    if len(set(ks.values())) != 1:
        raise ValueError(f"every row must hold the same number of images, got {ks}.")
    k = next(iter(ks.values()))
    if col_titles is not None and len(col_titles) != k:
        raise ValueError(f"col_titles has {len(col_titles)} entries for {k} columns; pass one per column.")
    title_h = 0.6 if col_titles is not None else 0.0
    fig = _figure(k * cell + 1.4, len(rows) * cell + title_h)
    for r, (label, images) in enumerate(rows.items()):
        for c in range(k):
            ax = fig.add_subplot(len(rows), k, r * k + c + 1)
            img = images[c]
            if img.dim() == 3 and img.shape[0] == 3:
                ax.imshow(to_numpy_image(img))
            else:
                ax.imshow(img.reshape(img.shape[-2:]).detach().float().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
            if r == 0 and col_titles is not None:
                ax.set_title(_wrap(col_titles[c], 24), fontsize=6)
    fig.tight_layout()
    return fig


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:4])


def show_masks(image: Tensor, masks: Sequence[Tensor], cell: float = 1.8) -> Any:
    """The paper's Fig. 6: an image and the mask of every generator stage as a heat map.

    Args:
        image: [3, H, W] in [−1, 1] (one image; take ``out.image[i]``).
        masks: the stages' masks for that image, each [1, s, s] or [s, s] with values in [0, 1]
            (``[m[i] for m in out.masks]``).

    Returns a Figure with ``1 + len(masks)`` axes: the image, then each mask (its side in the title).
    """
    if not masks:
        raise ValueError("masks is empty: the generator has no mask predictors (fusion must be 'ssf').")
    fig = _figure(cell * (1 + len(masks)), cell + 0.4)
    ax = fig.add_subplot(1, 1 + len(masks), 1)
    ax.imshow(to_numpy_image(image))
    ax.set_title("image", fontsize=8)
    ax.set_axis_off()
    for k, mask in enumerate(masks):
        m = mask.detach().float().cpu()
        if m.dim() == 3 and m.shape[0] == 1:
            m = m[0]
        if m.dim() != 2:
            raise ValueError(f"mask {k} must be [1, s, s] or [s, s], got shape {tuple(mask.shape)}.")
        ax = fig.add_subplot(1, 1 + len(masks), k + 2)
        ax.imshow(m.numpy(), cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_title(f"stage {k + 1} ({m.shape[0]}×{m.shape[1]})", fontsize=7)
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def show_attention(
    image: Tensor,
    attn_maps: Tensor,
    words: Sequence[str],
    cell: float = 1.6,
    alpha: float = 0.6,
    vmax: float | None = None,
) -> Any:
    """DAMSM word attention α (Eq. 7) over regions, upsampled onto the image, one panel per word.

    All words share one colour scale, from 0 to ``vmax`` (default: the largest attention value of
    the drawn words), with a colour bar, so that the panels can be compared: a word that spreads
    its attention evenly over the regions stays dark instead of looking like full attention, as it
    would if every map were scaled to its own maximum.

    Args:
        image: [3, H, W] in [−1, 1].
        attn_maps: [T, h, w] (e.g. ``DAMSM.attention_maps(...)[i]``); the first ``len(words)``
            maps are drawn. Each word's map sums to 1 over the h·w regions.
        words: the caption's words.
        vmax: the top of the shared colour scale (e.g. 1.0 for an absolute scale).

    Returns a Figure with ``1 + len(words)`` image axes (the image, then each word's map,
    bilinearly upsampled to H×W, over the image) and one colour-bar axis last.
    """
    if attn_maps.dim() != 3:
        raise ValueError(f"attn_maps must be [T, h, w], got shape {tuple(attn_maps.shape)}.")
    if not words:
        raise ValueError("words is empty; pass the caption's words.")
    if len(words) > attn_maps.shape[0]:
        raise ValueError(f"{len(words)} words but only {attn_maps.shape[0]} attention maps.")
    if vmax is not None and not vmax > 0:
        raise ValueError(f"vmax must be > 0, got {vmax}.")
    base = to_numpy_image(image)
    height, width = base.shape[:2]
    maps = attn_maps[: len(words)].detach().float().cpu().unsqueeze(1)
    up = torch.nn.functional.interpolate(maps, size=(height, width), mode="bilinear", align_corners=False)[:, 0]
    top = float(vmax) if vmax is not None else max(float(maps.max()), 1e-12)
    n = 1 + len(words)
    cols = min(n, 8)
    rows = math.ceil(n / cols)
    fig = _figure(cols * cell + 0.8, rows * (cell + 0.3))
    ax = fig.add_subplot(rows, cols, 1)
    ax.imshow(base)
    ax.set_title("image", fontsize=8)
    ax.set_axis_off()
    overlay = None
    panels = [ax]
    for k, word in enumerate(words):
        ax = fig.add_subplot(rows, cols, k + 2)
        ax.imshow(base)
        overlay = ax.imshow(up[k].numpy(), cmap="jet", alpha=alpha, vmin=0.0, vmax=top)
        ax.set_title(word, fontsize=8)
        ax.set_axis_off()
        panels.append(ax)
    fig.tight_layout()
    bar = fig.colorbar(overlay, ax=panels, fraction=0.02, pad=0.01)
    bar.set_label("attention α (Eq. 7)", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    return fig


def smooth(values: Sequence[float] | np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average: entry i is the mean of the last ``min(i + 1, window)`` values."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}.")
    arr = np.asarray(values, dtype=float)
    csum = np.concatenate([[0.0], np.cumsum(arr)])
    idx = np.arange(1, len(arr) + 1)
    lo = np.maximum(idx - window, 0)
    out: np.ndarray = (csum[idx] - csum[lo]) / (idx - lo)
    return out


_NOT_CURVES = {"step", "epoch", "lr", "time", "n_queries", "n_candidates"}


def training_curves(
    metrics_jsonl: str | Path, keys: Sequence[str] | None = None, window: int = 20, x: str = "step"
) -> Any:
    """Loss curves from a ``metrics.jsonl``: one axis per key, raw values faint, smoothed bold.

    Args:
        metrics_jsonl: the file.
        keys: which numeric fields to plot (default: every numeric field of the records except
            ``step``, ``epoch``, ``lr``, ``time``, in first-seen order).
        window: moving-average window (:func:`smooth`).
        x: the field on the x axis.

    Records without a key are skipped for that key (so train and eval records can share a file).

    Raises:
        ValueError: a requested key never occurs, or there is nothing to plot.
    """
    records = read_metrics(metrics_jsonl)
    if keys is None:
        seen: dict[str, None] = {}
        for rec in records:
            for k, v in rec.items():
                if k not in _NOT_CURVES and k != x and isinstance(v, (int, float)) and not isinstance(v, bool):
                    seen.setdefault(k, None)
        keys = list(seen)
    if not keys:
        raise ValueError(f"{metrics_jsonl}: no numeric fields to plot.")
    missing = [k for k in keys if not any(k in r for r in records)]
    if missing:
        available = sorted({k for r in records for k in r})
        raise ValueError(f"{metrics_jsonl}: no record has {missing}; available fields: {available}.")
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig = _figure(4.0 * cols, 2.8 * rows)
    for i, key in enumerate(keys):
        pts = [(r.get(x, j), r[key]) for j, r in enumerate(records) if isinstance(r.get(key), (int, float))]
        xs = np.asarray([p[0] for p in pts], dtype=float)
        ys = np.asarray([p[1] for p in pts], dtype=float)
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.plot(xs, ys, alpha=0.3, linewidth=0.8, color="C0")
        ax.plot(xs, smooth(ys, window), linewidth=1.6, color="C0")
        ax.set_title(key, fontsize=9)
        ax.set_xlabel(x, fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


#: Axis labels of the study's metrics (lower is better for FID).
_METRIC_LABELS = {
    "domain_fid": "domain FID ↓", "domain_is": "domain IS ↑", "attribute_accuracy": "attribute accuracy ↑",
    "r_precision": "R-precision ↑", "attribute_accuracy_other": "attribute acc., other captions",
    "csa_between_caption": "CSA code: caption spread / noise", "csa_retrieval": "CSA code: retrieval rate",
}  # fmt: skip


def budget_curves(
    results: Sequence[Mapping[str, Any]],
    metrics: Sequence[str] = ("domain_fid", "attribute_accuracy", "r_precision"),
    variants: Sequence[str] | None = None,
) -> Any:
    """Each metric against images seen: the mean over seeds per variant, ± one standard deviation shaded.

    ``results`` are study results with scored ``points`` (:func:`csagan.study.run`); a point present
    in one seed only is drawn without a band.

    Raises:
        ValueError: no result has points, or a metric occurs in none of them.
    """
    with_points = [r for r in results if r.get("points")]
    if not with_points:
        raise ValueError("budget_curves: no result has scored points (results of `csagan study run` with snapshots).")
    names = list(variants) if variants is not None else list(dict.fromkeys(str(r["variant"]) for r in with_points))
    fig = _figure(4.2 * len(metrics), 3.4)
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        drawn = False
        for j, variant in enumerate(names):
            by_images: dict[int, list[float]] = {}
            for r in with_points:
                if r["variant"] != variant:
                    continue
                for p in r["points"]:
                    value = p["metrics"].get(metric)
                    if isinstance(value, (int, float)) and math.isfinite(value):
                        by_images.setdefault(int(p["images_seen"]), []).append(float(value))
            if not by_images:
                continue
            xs = np.array(sorted(by_images), dtype=float)
            mean = np.array([np.mean(by_images[int(x)]) for x in xs])
            std = np.array([np.std(by_images[int(x)], ddof=1) if len(by_images[int(x)]) > 1 else 0.0 for x in xs])
            colour = f"C{j % 10}"
            ax.plot(xs, mean, "o-", color=colour, markersize=3, linewidth=1.3, label=variant)
            ax.fill_between(xs, mean - std, mean + std, color=colour, alpha=0.15, linewidth=0)
            drawn = True
        if not drawn:
            raise ValueError(f"budget_curves: no point has the metric {metric!r}.")
        ax.set_xlabel("images seen", fontsize=8)
        ax.set_ylabel(_METRIC_LABELS.get(metric, metric), fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


#: The x axes :func:`learning_curves` can draw: record key, label, divisor.
LEARNING_CURVE_AXES = {
    "images_seen": ("images seen", 1.0),
    "train_wall_s": ("training wall minutes", 60.0),
    "train_cpu_s": ("training CPU minutes (all threads)", 60.0),
}


def learning_curves(
    records: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    x_axes: Sequence[str] = ("train_cpu_s",),
    reference: Sequence[tuple[int, Mapping[str, Any]]] = (),
) -> Any:
    """Learning-speed records (``benchmarks/learning_speed.py``) as curves: one row per x axis of
    :data:`LEARNING_CURVE_AXES`, the domain FID on the left and the attribute accuracy on the right
    (the images' own captions solid, another species' captions dashed: the gap is the text following).

    ``reference`` is an optional ``(images seen, metrics)`` list drawn dotted on the ``images_seen`` row
    (the shipped run's ``progress.json``).

    Raises:
        ValueError: ``labels`` does not match ``records``, an unknown x axis, or a record without scored points.
    """
    if len(labels) != len(records):
        raise ValueError(f"learning_curves: {len(records)} records but {len(labels)} labels.")
    unknown = [x for x in x_axes if x not in LEARNING_CURVE_AXES]
    if unknown or not x_axes:
        raise ValueError(f"learning_curves: x axes {unknown or list(x_axes)}; choose from {list(LEARNING_CURVE_AXES)}.")
    fig = _figure(12, 3.8 * len(x_axes))
    axes = fig.subplots(len(x_axes), 2, squeeze=False)
    for n, (rec, label) in enumerate(zip(records, labels)):
        pts = [p for p in rec["points"] if p.get("scores")]
        if not pts:
            raise ValueError(f"learning_curves: record {label!r} has no scored point.")
        colour = f"C{n % 10}"
        for row, key in enumerate(x_axes):
            x = [p[key] / LEARNING_CURVE_AXES[key][1] for p in pts]
            axes[row][0].plot(x, [p["scores"].get("domain_fid") for p in pts], "o-", color=colour, label=label)
            axes[row][1].plot(x, [p["scores"].get("attribute_accuracy") for p in pts], "o-", color=colour,
                              label=f"{label}: own captions")
            axes[row][1].plot(x, [p["scores"].get("attribute_accuracy_other") for p in pts], "x--", color=colour,
                              alpha=0.6, label=f"{label}: other captions")
    if reference and "images_seen" in x_axes:
        row = list(x_axes).index("images_seen")
        x = [r[0] for r in reference]
        axes[row][0].plot(x, [r[1]["domain_fid"] for r in reference], "k:", label="shipped run (progress.json)")
        axes[row][1].plot(x, [r[1]["attribute_accuracy"] for r in reference], "k:", label="shipped run, own captions")
    for row, key in enumerate(x_axes):
        axes[row][0].set_ylabel("domain FID ↓")
        axes[row][1].set_ylabel("attribute accuracy ↑")
        for col in range(2):
            axes[row][col].set_xlabel(LEARNING_CURVE_AXES[key][0])
            axes[row][col].grid(alpha=0.3)
            axes[row][col].legend(fontsize=7)
    fig.tight_layout()
    return fig


def toybirds_examples(
    root: str | Path, n: int = 8, split: str = "train", seed: int = 0, image_size: int = 64, ncol: int = 4
) -> Any:
    """``n`` images of a dataset root (ToyBirds or any AttnGAN layout) with their first caption.

    Items are picked evenly over the split (deterministic for a given ``seed``).
    """

    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}.")
    data = TextImageDataset(root, split, image_size=image_size, transform="eval", seed=seed)
    count = min(n, len(data))
    picks = sorted({int(i) for i in np.linspace(0, len(data) - 1, count)})
    images = torch.stack([data[i].image for i in picks])
    captions = [data.caption_texts(i)[0] for i in picks]
    return image_grid(images, nrow=ncol, captions=captions, cell=2.0)


def _box(ax: Any, x: float, y: float, w: float, h: float, text: str, gid: str, colour: str) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=colour, edgecolor="0.25", linewidth=1.0))
    ax.text(x, y, text, ha="center", va="center", fontsize=7.5, gid=gid)


def _arrow(ax: Any, x0: float, y0: float, x1: float, y1: float) -> None:
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": "->", "color": "0.3", "lw": 1.0})


def architecture_diagram(cfg: Any) -> Any:
    """A block diagram of the generator (top) and the discriminator (bottom) drawn from ``cfg``.

    ``cfg`` is a :class:`csagan.config.ModelConfig`. The generator row shows the CSA layer (Eq. 16,
    when ``cfg.use_csa``), the first linear layer to 8·nf×4×4, one box per up-block with its
    (in → out) channels from :func:`csagan.models.generator_channels`, its resolutions and its fusion
    (two SSF layers, Eq. 21, and a mask predictor for ``fusion="ssf"``), the output convolution and
    G0's weighted logits (when ``cfg.use_g0``); the discriminator row shows the first convolution, one
    box per down-block with its channels from :func:`csagan.models.discriminator_channels` and its
    resolutions, and the one-way conditional head that scores D(x, t) (Eq. 24).

    Every box's text has a ``gid`` (``"G.csa"``, ``"G.fc"``, ``"G.up0"``…, ``"G.to_rgb"``,
    ``"G.g0"``, ``"D.conv_img"``, ``"D.down0"``…, ``"D.head"``), so that tests and readers can
    find a box's label; the channel line of a block reads ``"in → out ch"``.
    """

    if not isinstance(cfg, ModelConfig):
        raise TypeError(f"architecture_diagram needs a csagan.config.ModelConfig, got {type(cfg).__name__}.")
    c_hat, e_bar = r"$\hat{c}$", r"$\bar{e}$"  # the book's notation (intro.md)
    g_chans = generator_channels(cfg)
    d_chans = discriminator_channels(cfg)
    fusion = {"ssf": "2× SSF (21)\n+ mask m", "cbn": "2× CBN (19–20)", "affine": "2× affine (DF-GAN)"}[cfg.fusion]
    code = f"{c_hat} ({cfg.c_dim})" if cfg.use_csa else f"{e_bar} ({cfg.text_dim})"

    x_end = 2 + max(len(g_chans), len(d_chans)) + 0.95
    fig = _figure(1.45 * (x_end + 0.6), 4.4)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(-0.6, x_end)
    ax.set_ylim(1.15, 5.75)
    ax.axis("off")
    bw, bh = 0.86, 0.95
    gy, cy, dy = 3.75, 5.05, 1.75

    # generator
    ax.text(-0.5, 5.55, f"generator G ({cfg.name}, {cfg.image_size} px, nf = {cfg.nf})", fontsize=9,
            fontweight="bold", gid="G.title")
    _box(ax, 0, gy, bw, bh, f"noise $z$\n({cfg.z_dim})", "G.z", "#eeeeee")
    _box(ax, 0, cy - 0.1, bw, 0.6, f"sentence {e_bar}\n({cfg.text_dim})", "G.sentence", "#eeeeee")
    if cfg.use_csa:
        _box(ax, 1, cy - 0.1, bw, 0.6, f"CSA (16)\n{c_hat} ({cfg.c_dim})", "G.csa", "#f6d7a7")
        _arrow(ax, 0 + bw / 2, cy - 0.1, 1 - bw / 2, cy - 0.1)
    _box(ax, 1, gy, bw, bh, f"fc\n{cfg.z_dim} → {8 * cfg.nf}×4×4", "G.fc", "#cfe2f3")
    _arrow(ax, bw / 2, gy, 1 - bw / 2, gy)
    side = 4
    for i, (c_in, c_out) in enumerate(g_chans):
        x = 2 + i
        _box(ax, x, gy, bw, bh, f"up-block {i}\n{c_in} → {c_out} ch\n{side} → {2 * side} px\n{fusion}",
             f"G.up{i}", "#d9ead3")
        _arrow(ax, x - 1 + bw / 2, gy, x - bw / 2, gy)
        _arrow(ax, 1.0 if cfg.use_csa else 0.0, cy - 0.4, x, gy + bh / 2)  # the code conditions every block
        side *= 2
    x_rgb = 2 + len(g_chans)
    _box(ax, x_rgb, gy, bw, bh, f"to_rgb\n{g_chans[-1][1]} → 3 ch\n3×3 conv\ntanh", "G.to_rgb", "#cfe2f3")
    _arrow(ax, x_rgb - 1 + bw / 2, gy, x_rgb - bw / 2, gy)
    if cfg.use_g0:
        _box(ax, x_rgb, cy - 0.1 + 0.05, bw, 0.7, f"G0 ({4 * cfg.g0_nf} ch)\n+ w·logits\nw₀ = {cfg.g0_weight_init}",
             "G.g0", "#f4cccc")
        _arrow(ax, x_rgb, cy - 0.1 - 0.3, x_rgb, gy + bh / 2)
    ax.text(x_rgb + bw / 2 + 0.05, gy, f"$x_g$\n3×{cfg.image_size}×{cfg.image_size}", fontsize=8, va="center",
            gid="G.output")
    ax.text(1.55, cy - 0.05, f"the code {code} conditions every up-block", fontsize=7, color="0.35", gid="G.code")

    # discriminator
    ax.text(-0.5, dy + 0.75, f"discriminator D ({cfg.image_size} px, d_nf = {cfg.d_nf})", fontsize=9,
            fontweight="bold", gid="D.title")
    _box(ax, 0, dy, bw, bh, f"image $x$ or $x_g$\n3×{cfg.image_size}×{cfg.image_size}", "D.input", "#eeeeee")
    _box(ax, 1, dy, bw, bh, f"conv 3×3\n3 → {cfg.d_nf} ch\n{cfg.image_size} px", "D.conv_img", "#cfe2f3")
    _arrow(ax, bw / 2, dy, 1 - bw / 2, dy)
    side = cfg.image_size
    for i, (c_in, c_out) in enumerate(d_chans):
        x = 2 + i
        _box(ax, x, dy, bw, bh, f"down-block {i}\n{c_in} → {c_out} ch\n{side} → {side // 2} px", f"D.down{i}",
             "#fff2cc")
        _arrow(ax, x - 1 + bw / 2, dy, x - bw / 2, dy)
        side //= 2
    x_head = 2 + len(d_chans)
    _box(ax, x_head, dy, bw, bh, f"head\n[{d_chans[-1][1]} + {e_bar} {cfg.text_dim}]\n×4×4 → 1\nD(x, t)", "D.head",
         "#f6d7a7")
    _arrow(ax, x_head - 1 + bw / 2, dy, x_head - bw / 2, dy)
    return fig


#: The package in three layers (top: what a user runs; bottom: the paper), each module with what it holds.
#: ``tests/test_plotting.py`` keeps this list equal to the modules in ``csagan/``.
PACKAGE_LAYERS: dict[str, tuple[tuple[str, str], ...]] = {
    "workflows: what a user runs": (
        ("pretrain", "DAMSM pretraining"), ("train", "engine, step, config, checkpoint, run, distributed"),
        ("sample", "captions to images"), ("evaluate", "EvalConfig, plan, scores, report"),
        ("study", "StudyConfig, runner, scoring, verdicts, figures"), ("cli", "the csagan command"),
        ("notebook", "papermill parameters, checks"), ("plotting", "the book's figures"),
    ),
    "infrastructure: data, metrics, file formats": (
        ("data", "ToyBirds, AttnGAN layout, prepare"), ("metrics", "IS, FID (26-27), R-precision"),
        ("evaluator", "ToyBirds attribute classifier"), ("damsm_io", "DAMSM folder, AttnGAN files"),
        ("dfgan_import", "DF-GAN checkpoints"), ("settings", "key=value parser, type checks"),
        ("atomic", "atomic writes"), ("runlock", "one process per folder"), ("safe_load", "checked torch.load"),
        ("devices", "devices, hardware record"), ("paths", "repository paths"), ("profile", "smoke / book / full"),
    ),
    "the paper: one module per idea": (
        ("text", "BiLSTM (Eqs. 13-15)"), ("damsm", "DAMSM losses (Eqs. 5-12)"),
        ("damsm_encoders", "image encoders (Eq. 4)"), ("csa", "CSA and its KL (Eq. 16)"), ("fusion", "masks, BN, CBN, SSF (17-21)"),
        ("models", "G, G0, D"), ("losses", "MA-GP, objectives (22-25)"), ("config", "model variants"),
    ),
}  # fmt: skip


def package_layers_diagram(per_row: int = 6) -> Any:
    """The three layers of :data:`PACKAGE_LAYERS` as bands of boxes, ``per_row`` modules a row
    (the book's introduction)."""
    bands = [(layer, [mods[i : i + per_row] for i in range(0, len(mods), per_row)])
             for layer, mods in PACKAGE_LAYERS.items()]  # fmt: skip
    n_rows = sum(len(chunks) for _, chunks in bands)
    height = n_rows * 1.0 + len(bands) * 0.45
    fig = _figure(1.75 * per_row, 0.95 * height)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, per_row)
    ax.set_ylim(0, height)
    ax.axis("off")
    colours = ("#dce9f7", "#e6f2dc", "#f7e6d5")
    y = height
    for n, (layer, chunks) in enumerate(bands):
        y -= 0.4
        ax.text(0.05, y + 0.18, layer, fontsize=10, weight="bold", va="center")
        for chunk in chunks:
            y -= 1.0
            for c, (name, what) in enumerate(chunk):
                x = c + 0.04
                ax.add_patch(_rectangle(x, y + 0.06, 0.92, 0.86, colours[n % len(colours)]))
                ax.text(x + 0.46, y + 0.68, name, ha="center", va="center", fontsize=9, family="monospace",
                        weight="bold")
                ax.text(x + 0.46, y + 0.34, _wrap(what, 24), ha="center", va="center", fontsize=6.5)
        y -= 0.05
    return fig


def _rectangle(x: float, y: float, w: float, h: float, colour: str) -> Any:
    from matplotlib.patches import FancyBboxPatch

    return FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", facecolor=colour, edgecolor="#555555",
                          linewidth=0.8)
