"""Tests of csagan.plotting: figures have the right number of axes and save as PNG files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from csagan.config import get_model_config
from csagan.plotting import (
    architecture_diagram,
    image_grid,
    read_metrics,
    show_attention,
    show_masks,
    smooth,
    to_numpy_image,
    toybirds_examples,
    training_curves,
    variant_grid,
)


def _images(n: int, size: int = 16) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1


def _saved_png(fig, path: Path) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    fig.savefig(path)
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


def test_to_numpy_image_maps_range() -> None:
    img = torch.tensor([[[-1.0, 0.0], [1.0, 2.0]]] * 3)
    arr = to_numpy_image(img)
    assert arr.shape == (2, 2, 3)
    np.testing.assert_allclose(arr[..., 0], [[0.0, 0.5], [1.0, 1.0]])


def test_image_grid_axes_and_png(tmp_path: Path) -> None:
    fig = image_grid(_images(5), nrow=2, captions=[f"bird {i}" for i in range(5)])
    assert len(fig.axes) == 5
    assert [ax.get_title() for ax in fig.axes] == [f"bird {i}" for i in range(5)]
    w, h = _saved_png(fig, tmp_path / "grid.png")
    assert h > w  # 3 rows of 2


def test_image_grid_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        image_grid(torch.zeros(3, 16, 16))
    with pytest.raises(ValueError, match="one per image"):
        image_grid(_images(2), captions=["only one"])


def test_variant_grid_rows_labels_and_masks(tmp_path: Path) -> None:
    rows = {"csagan": _images(3), "dfgan": _images(3), "masks": torch.rand(3, 1, 16, 16)}
    fig = variant_grid(rows, col_titles=["a", "b", "c"])
    assert len(fig.axes) == 9
    assert [ax.get_ylabel() for ax in fig.axes[::3]] == ["csagan", "dfgan", "masks"]
    assert [ax.get_title() for ax in fig.axes[:3]] == ["a", "b", "c"] and fig.axes[3].get_title() == ""
    mask_img = fig.axes[6].get_images()[0]
    assert mask_img.get_cmap().name == "gray" and mask_img.get_clim() == (0, 1)
    w, h = _saved_png(fig, tmp_path / "rows.png")
    assert w > h
    with pytest.raises(ValueError, match="same number"):
        variant_grid({"a": _images(2), "b": _images(3)})
    with pytest.raises(ValueError, match="one per column"):
        variant_grid({"a": _images(2)}, col_titles=["x"])


def test_show_masks_one_axis_per_stage(tmp_path: Path) -> None:
    masks = [torch.rand(1, s, s) for s in (4, 8, 16)]
    fig = show_masks(_images(1)[0], masks)
    assert len(fig.axes) == 4
    assert fig.axes[3].get_title().startswith("stage 3 (16×16)")
    _saved_png(fig, tmp_path / "masks.png")
    with pytest.raises(ValueError, match="no mask predictors"):
        show_masks(_images(1)[0], [])


def test_show_attention_panels_and_upsampling(tmp_path: Path) -> None:
    attn = torch.softmax(torch.randn(6, 4, 4), dim=-1)
    fig = show_attention(_images(1, 32)[0], attn, ["a", "red", "bird"])
    assert len(fig.axes) == 5  # the image, three words, the colour bar
    assert [ax.get_title() for ax in fig.axes[1:4]] == ["a", "red", "bird"]
    overlay = fig.axes[1].get_images()[1].get_array()
    assert overlay.shape == (32, 32)  # upsampled onto the image
    _saved_png(fig, tmp_path / "attn.png")
    with pytest.raises(ValueError, match="attention maps"):
        show_attention(_images(1)[0], attn[:2], ["a", "red", "bird"])
    with pytest.raises(ValueError, match="vmax"):
        show_attention(_images(1)[0], attn, ["a"], vmax=0.0)


def test_show_attention_shares_one_colour_scale() -> None:
    # A uniform map (1/16 on each of 4x4 regions) and a map with all its mass on one region:
    # on a shared scale the uniform one stays at 1/16 of the peak; scaled to its own maximum
    # (the old behaviour) it would look like full attention everywhere.
    uniform = torch.full((4, 4), 1 / 16)
    peaked = torch.zeros(4, 4)
    peaked[1, 2] = 1.0
    fig = show_attention(_images(1, 16)[0], torch.stack([uniform, peaked]), ["uniform", "peaked"])
    (u_img,) = fig.axes[1].get_images()[1:]
    (p_img,) = fig.axes[2].get_images()[1:]
    assert u_img.get_clim() == p_img.get_clim() == (0.0, 1.0)
    np.testing.assert_allclose(u_img.get_array(), 1 / 16, rtol=1e-6)
    assert float(np.max(p_img.get_array())) > 0.5
    bar = fig.axes[-1]
    assert bar.get_ylim() == pytest.approx((0.0, 1.0))  # the colour bar spans the shared scale
    fixed = show_attention(_images(1, 16)[0], uniform[None], ["uniform"], vmax=0.5)
    assert fixed.axes[1].get_images()[1].get_clim() == (0.0, 0.5)


def test_smooth_is_a_trailing_mean() -> None:
    vals = [1.0, 3.0, 5.0, 7.0]
    # window 2 by hand: 1, (1+3)/2, (3+5)/2, (5+7)/2
    np.testing.assert_allclose(smooth(vals, 2), [1.0, 2.0, 4.0, 6.0])
    np.testing.assert_allclose(smooth(vals, 1), vals)
    np.testing.assert_allclose(smooth(vals, 10), [1.0, 2.0, 3.0, 4.0])


def _metrics(path: Path) -> Path:
    lines = [{"kind": "train", "step": s, "epoch": 0, "w1": 3.0 - s / 10, "total": 10.0 - s, "lr": 0.002}
             for s in range(1, 9)]
    lines.append({"kind": "eval", "split": "test", "step": 8, "epoch": 0, "r_precision": 0.3})
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n\n")
    return path


def test_training_curves_default_and_chosen_keys(tmp_path: Path) -> None:
    metrics = _metrics(tmp_path / "metrics.jsonl")
    assert len(read_metrics(metrics)) == 9
    fig = training_curves(metrics)
    assert [ax.get_title() for ax in fig.axes] == ["w1", "total", "r_precision"]
    line = fig.axes[1].get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), [10.0 - s for s in range(1, 9)])
    _saved_png(fig, tmp_path / "curves.png")
    fig = training_curves(metrics, keys=["total"], window=3)
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match="available fields"):
        training_curves(metrics, keys=["d_loss"])


def test_training_curves_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        training_curves(tmp_path / "metrics.jsonl")


def test_toybirds_examples(tmp_path: Path) -> None:
    from csagan.data.toybirds import make_toybirds

    root = make_toybirds(tmp_path / "tb", size=32, n_images=16, n_species=4, workers=1, progress=False)
    fig = toybirds_examples(root, n=3, image_size=32, ncol=3)
    assert len(fig.axes) == 3
    assert all(ax.get_title() for ax in fig.axes)
    _saved_png(fig, tmp_path / "examples.png")


def _labels(fig, prefix: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The text of every box whose gid starts with ``prefix``, by gid."""
    return {t.get_gid(): t.get_text() for t in fig.axes[0].texts if (t.get_gid() or "").startswith(prefix)}


def _channels(text: str) -> tuple[int, int]:
    import re

    m = re.search(r"(\d+) → (\d+) ch", text)
    assert m, text
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize(
    ("name", "size", "g_expected", "d_expected", "boxes"),
    [
        # DF-GAN's multipliers (8,8),(8,4),(4,2),(2,1) x nf = 32 at 64 px; D: 32 x (1,2,4,8,8)
        ("csagan", "cpu", [(256, 256), (256, 128), (128, 64), (64, 32)],
         [(32, 64), (64, 128), (128, 256), (256, 256)], {"G.csa", "G.g0"}),
        # 256 px, nf = 64: (8,8),(8,8),(8,8),(8,4),(4,2),(2,1) x 64; D: 32 x (1,2,4,8,8,8,8); no CSA, no G0
        ("ssagan", "paper", [(512, 512), (512, 512), (512, 512), (512, 256), (256, 128), (128, 64)],
         [(32, 64), (64, 128), (128, 256), (256, 256), (256, 256), (256, 256)], set()),
    ],
)
def test_architecture_diagram_channels_follow_the_config(
    tmp_path: Path, name: str, size: str, g_expected: list, d_expected: list, boxes: set
) -> None:
    from csagan.models import discriminator_channels, generator_channels

    cfg = get_model_config(name, size=size)
    assert generator_channels(cfg) == g_expected and discriminator_channels(cfg) == d_expected
    fig = architecture_diagram(cfg)
    ups = _labels(fig, "G.up")
    downs = _labels(fig, "D.down")
    assert [_channels(ups[f"G.up{i}"]) for i in range(len(ups))] == g_expected
    assert [_channels(downs[f"D.down{i}"]) for i in range(len(downs))] == d_expected
    # resolutions: up-block i goes from 4·2^i to 4·2^(i+1) px, down-block i halves the side
    assert "4 → 8 px" in ups["G.up0"] and f"{cfg.image_size // 2} → {cfg.image_size} px" in ups[f"G.up{len(ups) - 1}"]
    assert f"{cfg.image_size} → {cfg.image_size // 2} px" in downs["D.down0"] and "8 → 4 px" in downs[f"D.down{len(downs) - 1}"]
    assert f"{8 * cfg.nf}×4×4" in _labels(fig, "G.fc")["G.fc"]
    assert ("mask" in ups["G.up0"]) == (cfg.fusion == "ssf")
    present = set(_labels(fig, "G."))
    assert {"G.csa", "G.g0"} & present == boxes
    assert "D.head" in _labels(fig, "D.")
    _saved_png(fig, tmp_path / "arch.png")
    with pytest.raises(TypeError, match="ModelConfig"):
        architecture_diagram({"nf": 32})


def test_budget_curves_draw_mean_and_std_over_seeds() -> None:
    from csagan.plotting import budget_curves

    def point(images: int, fid: float) -> dict:
        return {"images_seen": images, "metrics": {"domain_fid": fid}}

    res = [{"variant": "csagan", "seed": s, "points": [point(10, 9.0 + 2 * s), point(20, 5.0 + 2 * s)]} for s in (0, 1)]
    res.append({"variant": "dfgan", "seed": 0, "points": [point(10, 7.0), point(20, 6.0)]})
    fig = budget_curves(res, metrics=("domain_fid",))
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["csagan"].get_ydata()) == [10.0, 6.0] and list(lines["dfgan"].get_xdata()) == [10.0, 20.0]
    band = ax.collections[0].get_paths()[0].vertices  # mean ± sample std (ddof=1: sqrt(2) for 9, 11)
    assert np.isclose(band[:, 1].max(), 10.0 + np.sqrt(2.0)) and np.isclose(band[:, 1].min(), 6.0 - np.sqrt(2.0))
    with pytest.raises(ValueError, match="no point has the metric 'r_precision'"):
        budget_curves(res, metrics=("r_precision",))
    with pytest.raises(ValueError, match="no result has scored points"):
        budget_curves([{"variant": "csagan", "seed": 0, "metrics": {}}])


def test_learning_curves_plot_each_record_against_the_chosen_axes() -> None:
    from csagan.plotting import learning_curves

    def point(images: int, cpu_s: float, fid: float, own: float, other: float) -> dict:
        scores = {"domain_fid": fid, "attribute_accuracy": own, "attribute_accuracy_other": other}
        return {"images_seen": images, "train_wall_s": cpu_s / 2, "train_cpu_s": cpu_s, "scores": scores}

    rec = {"points": [point(100, 60.0, 500.0, 0.3, 0.2), point(200, 180.0, 300.0, 0.4, 0.2), {"images_seen": 300}]}
    fig = learning_curves([rec], ["run"], x_axes=("images_seen", "train_cpu_s"),
                          reference=[(100, {"domain_fid": 700.0, "attribute_accuracy": 0.25})])
    fid_images, _acc_images, fid_cpu, acc_cpu = fig.axes  # rows = x axes, columns = FID, accuracy
    lines = {line.get_label(): line for line in fid_cpu.get_lines()}
    assert list(lines["run"].get_xdata()) == [1.0, 3.0] and list(lines["run"].get_ydata()) == [500.0, 300.0]
    acc = {line.get_label(): list(line.get_ydata()) for line in acc_cpu.get_lines()}
    assert acc == {"run: own captions": [0.3, 0.4], "run: other captions": [0.2, 0.2]}  # the unscored point is left out
    assert [line.get_label() for line in fid_images.get_lines()] == ["run", "shipped run (progress.json)"]
    assert len(acc_cpu.get_lines()) == 2  # the reference is drawn on the images row only
    with pytest.raises(ValueError, match="1 records but 2 labels"):
        learning_curves([rec], ["a", "b"])
    with pytest.raises(ValueError, match="choose from"):
        learning_curves([rec], ["run"], x_axes=("epochs",))


def test_package_layers_list_every_module_once() -> None:
    from pathlib import Path as _Path

    import csagan
    from csagan.plotting import PACKAGE_LAYERS, package_layers_diagram

    root = _Path(csagan.__file__).parent
    modules = {p.stem for p in root.glob("*.py") if not p.stem.startswith("_")}
    modules |= {p.name for p in root.iterdir() if (p / "__init__.py").is_file()}
    listed = [name for mods in PACKAGE_LAYERS.values() for name, _ in mods]
    assert len(listed) == len(set(listed)) and set(listed) == modules
    fig = package_layers_diagram(per_row=6)
    names = {t.get_text() for t in fig.axes[0].texts}
    assert set(listed) <= names
