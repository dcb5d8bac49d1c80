"""ToyBirds: a procedural stand-in for CUB-200-2011 in AttnGAN's "birds" layout.

CUB and COCO cannot be downloaded here and a CPU cannot train on them, so the book ships a
synthetic dataset with CUB's structure: 200 species (prototypes of categorical attributes,
:mod:`csagan.data.attributes`), 11,788 images (AttnGAN's species split 150/50 gives
8,855 train / 2,933 test images, as for CUB), ten CUB-like captions per image and the same
files on disk (``CUB_200_2011/``, ``text/``, ``train/``, ``test/``). Every code path that reads
CUB (loaders, DAMSM Eqs. (4)-(12), the GAN Eqs. (1)-(25), the metrics Eqs. (26)-(27)) runs on it,
and because each image's attributes are known exactly, text-image alignment can be measured
exactly (``attributes.jsonl`` records which attributes each caption mentions).

Public API:

* :func:`plan_dataset` - how many species and how many images per species (no rendering);
* :func:`sample_species`, :func:`sample_individual` - attribute sampling;
* :func:`render_bird` - one anti-aliased image from an attribute record;
* :func:`caption_bird` - one caption that is true for the bird, with the attributes it names;
* :func:`make_toybirds` - the whole dataset on disk (deterministic for a seed, any worker count).
"""

from __future__ import annotations

import io
import json
import math
import multiprocessing
import os
import pickle
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter
from tqdm import tqdm

from csagan.data.attributes import (
    ATTRIBUTE_VALUES,
    BIRD_ATTRIBUTES,
    COLOUR_ATTRIBUTES,
    MUST_DIFFER,
    BirdAttributes,
    marking_colour,
)
from csagan.data.palette import RGB, jitter_colour, shade

#: Version of the generator; bump when output bytes change for the same arguments.
GENERATOR_VERSION = "1.0"
#: CUB-200-2011 sizes (AttnGAN birds split: species 1-150 train = 8,855 images, 151-200 test).
CUB_N_IMAGES = 11788
CUB_N_SPECIES = 200
CUB_N_TRAIN_IMAGES = 8855
#: Captions per image, as in CUB (Reed et al.'s annotations used by AttnGAN).
CAPTIONS_PER_IMAGE = 10
#: Drawing happens at this multiple of the output size, then is downsampled (anti-aliasing).
SUPERSAMPLE = 4
#: Probability that an individual re-samples one attribute away from its species prototype.
RESAMPLE_PROB = 0.1
#: Probability that an individual is seen in another habitat than its species' usual one.
BACKGROUND_RESAMPLE_PROB = 0.3
#: Fraction of the image side taken by one body unit, per size class.
SIZE_SCALE: dict[str, float] = {"small": 0.40, "medium": 0.50, "large": 0.60}

_MANAGED = ("CUB_200_2011", "text", "train", "test", "attributes.jsonl", "species.json", "toybirds.json")


# --------------------------------------------------------------------------------------------
# Planning: species and image counts (no rendering)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetPlan:
    """How many images each species gets.

    Attributes:
        counts: images per species, species 1..n in order.
        n_train_species: species ``1..n_train_species`` are the train split, the rest test.
    """

    counts: tuple[int, ...]
    n_train_species: int

    @property
    def n_species(self) -> int:
        """Number of species."""
        return len(self.counts)

    @property
    def n_images(self) -> int:
        """Number of images in total."""
        return sum(self.counts)

    @property
    def n_train_images(self) -> int:
        """Images of the train species."""
        return sum(self.counts[: self.n_train_species])

    @property
    def n_test_images(self) -> int:
        """Images of the test species."""
        return self.n_images - self.n_train_images


def _spread(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` integers differing by at most one (evenly spread)."""
    return [(total * (i + 1)) // parts - (total * i) // parts for i in range(parts)]


def plan_dataset(n_images: int | None = None, n_species: int = CUB_N_SPECIES) -> DatasetPlan:
    """Images per species, split by species like AttnGAN's birds (first 75 % train).

    With the defaults this is CUB's shape: 200 species, 11,788 images, 150 train species with
    8,855 images and 50 test species with 2,933 images. Other sizes keep CUB's train share of
    images (8855/11788) and spread images evenly within each split; with fewer images than
    species, the species are reduced to one image each so that both splits stay non-empty.

    Raises:
        ValueError: if ``n_species`` < 2 or ``n_images`` < 2.
    """
    if not isinstance(n_species, int) or n_species < 2:
        raise ValueError(f"n_species={n_species!r}: need an integer >= 2 (one train and one test species)")
    if n_images is None:
        n_images = (
            CUB_N_IMAGES if n_species == CUB_N_SPECIES else max(2, round(n_species * CUB_N_IMAGES / CUB_N_SPECIES))
        )
    if not isinstance(n_images, int) or n_images < 2:
        raise ValueError(f"n_images={n_images!r}: need an integer >= 2 (one train and one test image)")
    n_species = min(n_species, n_images)
    n_train_species = max(1, min(n_species - 1, (3 * n_species + 2) // 4))
    n_test_species = n_species - n_train_species
    n_train = round(n_images * CUB_N_TRAIN_IMAGES / CUB_N_IMAGES)
    n_train = max(n_train_species, min(n_images - n_test_species, n_train))
    counts = _spread(n_train, n_train_species) + _spread(n_images - n_train, n_test_species)
    return DatasetPlan(counts=tuple(counts), n_train_species=n_train_species)


# --------------------------------------------------------------------------------------------
# Attribute sampling
# --------------------------------------------------------------------------------------------


def _allowed(name: str, current: dict[str, str]) -> tuple[str, ...]:
    """Values of ``name`` compatible with the already-set attributes under MUST_DIFFER."""
    banned = set()
    for first, second in MUST_DIFFER:
        if name == first and second in current:
            banned.add(current[second])
        elif name == second and first in current:
            banned.add(current[first])
    return tuple(v for v in ATTRIBUTE_VALUES[name] if v not in banned)


def _choice(values: Sequence[str], rng: np.random.Generator) -> str:
    return values[int(rng.integers(len(values)))]


def sample_attributes(rng: np.random.Generator) -> BirdAttributes:
    """Uniformly random attributes that satisfy the schema's MUST_DIFFER rule."""
    current: dict[str, str] = {}
    for name in ATTRIBUTE_VALUES:
        current[name] = _choice(_allowed(name, current), rng)
    return BirdAttributes.from_dict(current)


@dataclass(frozen=True)
class Species:
    """A species: 1-based class id, a unique CUB-like name and a prototype."""

    class_id: int
    name: str
    prototype: BirdAttributes

    @property
    def class_dir(self) -> str:
        """CUB-style class directory, e.g. ``001.Red_crowned_Finch``."""
        return f"{self.class_id:03d}.{self.name}"


_GENERA: dict[tuple[str, str], tuple[str, ...]] = {
    ("small", "short"): ("Finch", "Sparrow", "Bunting", "Junco", "Siskin"),
    ("small", "long"): ("Warbler", "Wren", "Vireo", "Creeper", "Hummingbird"),
    ("medium", "short"): ("Grosbeak", "Tanager", "Cardinal", "Towhee", "Bulbul"),
    ("medium", "long"): ("Flycatcher", "Thrasher", "Oriole", "Kingfisher", "Starling"),
    ("large", "short"): ("Jay", "Dove", "Cuckoo", "Crow", "Parrot"),
    ("large", "long"): ("Woodpecker", "Tern", "Gull", "Heron", "Shrike"),
}


def _descriptors(p: BirdAttributes) -> list[str]:
    """CUB-like name parts describing a prototype ("Red_crowned", "Long_tailed", ...)."""
    out = [
        f"{p.crown_color.capitalize()}_crowned",
        f"{p.belly_color.capitalize()}_bellied",
        f"{p.back_color.capitalize()}_backed",
        f"{p.wing_color.capitalize()}_winged",
        f"{p.tail_color.capitalize()}_tailed",
        f"{p.bill_color.capitalize()}_billed",
        f"{p.leg_color.capitalize()}_footed",
    ]
    if p.wing_pattern == "wing_bars":
        out.append("Bar_winged")
    elif p.wing_pattern == "spotted":
        out.append("Spotted_winged")
    if p.tail_length == "long":
        out.append("Long_tailed")
    if p.bill_length == "long":
        out.append("Long_billed")
    if p.eye_marking == "eye_ring":
        out.append("Spectacled")
    elif p.eye_marking == "eyebrow":
        out.append(f"{marking_colour(p.crown_color).capitalize()}_browed")
    return out


def _species_name(p: BirdAttributes, used: set[str], rng: np.random.Generator) -> str:
    """A name built from the prototype's attributes, not yet in ``used``."""
    descriptors = _descriptors(p)
    genera = _GENERA[(p.size, p.bill_length)]
    order = [int(i) for i in rng.permutation(len(descriptors))]
    genus_order = [int(i) for i in rng.permutation(len(genera))]
    for g in genus_order:
        for i in order:
            name = f"{descriptors[i]}_{genera[g]}"
            if name not in used:
                return name
    for g in genus_order:
        for i in order:
            for j in order:
                if i != j:
                    name = f"{descriptors[i]}_{descriptors[j]}_{genera[g]}"
                    if name not in used:
                        return name
    k = 2
    while f"{descriptors[order[0]]}_{genera[genus_order[0]]}_{k}" in used:
        k += 1
    return f"{descriptors[order[0]]}_{genera[genus_order[0]]}_{k}"


def sample_species(n_species: int, rng: np.random.Generator) -> list[Species]:
    """``n_species`` random prototypes with unique CUB-like names (ids 1..n_species).

    Prototypes face right (the facing of each image is drawn per individual).

    Raises:
        ValueError: if ``n_species`` < 1.
    """
    if n_species < 1:
        raise ValueError(f"n_species={n_species}: need at least one species")
    used: set[str] = set()
    out: list[Species] = []
    for class_id in range(1, n_species + 1):
        proto = sample_attributes(rng).replace(facing="right")
        name = _species_name(proto, used, rng)
        used.add(name)
        out.append(Species(class_id=class_id, name=name, prototype=proto))
    return out


def sample_individual(
    prototype: BirdAttributes,
    rng: np.random.Generator,
    resample_prob: float = RESAMPLE_PROB,
    background_resample_prob: float = BACKGROUND_RESAMPLE_PROB,
) -> BirdAttributes:
    """One individual of a species: the prototype with a few attributes re-drawn.

    Each bird attribute is re-drawn (among values compatible with the others) with
    probability ``resample_prob``; the habitat with ``background_resample_prob``; the facing
    direction is a fair coin. So species overlap a little, as real ones do.

    Raises:
        ValueError: if a probability is outside [0, 1].
    """
    for label, p in (("resample_prob", resample_prob), ("background_resample_prob", background_resample_prob)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{label}={p}: must be a probability in [0, 1]")
    current = prototype.to_dict()
    for name in ATTRIBUTE_VALUES:
        if name == "facing":
            current[name] = _choice(ATTRIBUTE_VALUES[name], rng)
            continue
        p = background_resample_prob if name == "background" else resample_prob
        if rng.random() < p:
            others = {k: v for k, v in current.items() if k != name}
            current[name] = _choice(_allowed(name, others), rng)
    return BirdAttributes.from_dict(current)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedBird:
    """A rendered image and its ground truth.

    Attributes:
        image: RGB image, ``size`` x ``size``.
        bbox: the bird's tight box (x, y, w, h) in output pixels (legs and claws included).
        anchors: part name -> (x, y) output-pixel point well inside that part's flat fill
            (``crown``, ``back``, ``belly``, ``wing``, ``tail``, ``leg``); the wing anchor lies
            between markings.
        colours: part name -> the jittered RGB used for it.
    """

    image: Image.Image
    bbox: tuple[float, float, float, float]
    anchors: dict[str, tuple[float, float]]
    colours: dict[str, RGB]


def _rot(u: float, v: float, angle: float) -> tuple[float, float]:
    """Rotate (u, v) by ``angle`` radians (y points down, so positive turns clockwise)."""
    c, s = math.cos(angle), math.sin(angle)
    return (u * c - v * s, u * s + v * c)


class _Frame:
    """Maps bird units (x forward along the facing direction, y down) to canvas pixels."""

    def __init__(self, cx: float, cy: float, scale: float, direction: int) -> None:
        self.cx, self.cy, self.scale, self.direction = cx, cy, scale, direction

    def px(self, u: float, v: float) -> tuple[float, float]:
        return (self.cx + self.direction * u * self.scale, self.cy + v * self.scale)

    def ellipse(
        self, cu: float, cv: float, rx: float, ry: float, angle: float, n: int = 40
    ) -> list[tuple[float, float]]:
        pts = []
        for k in range(n):
            t = 2.0 * math.pi * k / n
            du, dv = _rot(rx * math.cos(t), ry * math.sin(t), angle)
            pts.append(self.px(cu + du, cv + dv))
        return pts

    def width(self, units: float) -> int:
        return max(1, round(units * self.scale))


def _mask(size: int, draw_fn: Callable[[ImageDraw.ImageDraw], None]) -> Image.Image:
    m = Image.new("L", (size, size), 0)
    draw_fn(ImageDraw.Draw(m))
    return m


def _paint(layer: Image.Image, rgb: RGB, mask: Image.Image) -> None:
    box = mask.getbbox()
    if box is not None:
        layer.paste((*rgb, 255), box, mask.crop(box))


def _gradient(w: int, top: RGB, bottom: RGB) -> np.ndarray:
    t = np.linspace(0.0, 1.0, w, dtype=np.float32)[:, None, None]
    a = np.asarray(top, dtype=np.float32)[None, None, :]
    b = np.asarray(bottom, dtype=np.float32)[None, None, :]
    return np.broadcast_to(a + (b - a) * t, (w, w, 3)).copy()


def _jit(rgb: RGB, rng: np.random.Generator, amount: int = 12) -> RGB:
    d = rng.integers(-amount, amount + 1, size=3)
    r, g, b = (int(np.clip(c + int(x), 0, 255)) for c, x in zip(rgb, d))
    return (r, g, b)


def _background(kind: str, w: int, rng: np.random.Generator) -> Image.Image:
    """A habitat backdrop (gradient plus soft texture), ``w`` x ``w`` canvas pixels."""
    if kind == "sky":
        arr = _gradient(w, _jit((92, 150, 222), rng), _jit((196, 224, 246), rng))
        img = Image.fromarray(arr.astype(np.uint8))
        clouds = Image.new("L", (w, w), 0)
        d = ImageDraw.Draw(clouds)
        for _ in range(int(rng.integers(2, 5))):
            x, y = rng.uniform(-0.1, 1.1) * w, rng.uniform(0.05, 0.7) * w
            for _ in range(4):
                rx, ry = rng.uniform(0.06, 0.14) * w, rng.uniform(0.03, 0.06) * w
                ox, oy = rng.uniform(-0.12, 0.12) * w, rng.uniform(-0.03, 0.03) * w
                d.ellipse((x + ox - rx, y + oy - ry, x + ox + rx, y + oy + ry), fill=200)
        clouds = clouds.filter(ImageFilter.GaussianBlur(w * 0.02))
        img.paste((250, 252, 255), (0, 0), clouds)
        return img
    if kind == "foliage":
        arr = _gradient(w, _jit((34, 76, 40), rng), _jit((78, 122, 58), rng))
        img = Image.fromarray(arr.astype(np.uint8))
        d = ImageDraw.Draw(img)
        for _ in range(40):
            x, y = rng.uniform(0, 1) * w, rng.uniform(0, 1) * w
            r = rng.uniform(0.03, 0.09) * w
            g = int(rng.integers(70, 170))
            col = (int(g * rng.uniform(0.3, 0.6)), g, int(g * rng.uniform(0.2, 0.45)))
            d.ellipse((x - r, y - 0.6 * r, x + r, y + 0.6 * r), fill=col)
        return img.filter(ImageFilter.GaussianBlur(w * 0.015))
    if kind == "water":
        arr = _gradient(w, _jit((58, 132, 170), rng), _jit((20, 68, 108), rng))
        img = Image.fromarray(arr.astype(np.uint8))
        ripples = Image.new("L", (w, w), 0)
        d = ImageDraw.Draw(ripples)
        for _ in range(28):
            x, y = rng.uniform(-0.1, 1.1) * w, rng.uniform(0, 1) * w
            half = rng.uniform(0.05, 0.2) * w * (0.5 + y / w)
            d.line((x - half, y, x + half, y), fill=int(rng.integers(60, 150)), width=max(1, w // 120))
        img.paste((200, 230, 245), (0, 0), ripples.filter(ImageFilter.GaussianBlur(w * 0.004)))
        return img
    if kind == "sand":
        arr = _gradient(w, _jit((232, 208, 160), rng), _jit((200, 166, 116), rng))
        small = rng.normal(0.0, 7.0, size=(w // 8, w // 8, 1)).astype(np.float32)
        noise = np.asarray(Image.fromarray(small[:, :, 0]).resize((w, w), Image.Resampling.BICUBIC))
        arr = arr + noise[:, :, None] + rng.normal(0.0, 4.0, size=(w, w, 1)).astype(np.float32)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        d = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(3, 8))):
            x, y = rng.uniform(0, 1) * w, rng.uniform(0.5, 1) * w
            r = rng.uniform(0.008, 0.02) * w
            d.ellipse((x - r, y - 0.7 * r, x + r, y + 0.7 * r), fill=_jit((150, 128, 100), rng, 20))
        return img
    raise ValueError(f"unknown background {kind!r}; expected one of {ATTRIBUTE_VALUES['background']}")


def _draw_perch(img: Image.Image, y_at: Callable[[float], float], thickness: float, rng: np.random.Generator) -> None:
    """A branch across the image whose top edge is the line ``y_at(x)``."""
    w = img.width
    wood = _jit((112, 78, 48), rng, 14)
    d = ImageDraw.Draw(img)
    xs = np.linspace(-2, w + 2, 24)
    wobble = rng.uniform(-0.08, 0.08, size=xs.size) * thickness
    top = [(float(x), float(y_at(x) + o)) for x, o in zip(xs, wobble)]
    bottom = [(float(x), float(y_at(x) + thickness + o * 0.5)) for x, o in zip(xs[::-1], wobble[::-1])]
    d.polygon(top + bottom, fill=wood)
    # shading: a dark underside and a light top edge, plus bark streaks
    d.line([(x, y + thickness * 0.78) for x, y in top], fill=shade(wood, 0.6), width=max(1, int(thickness * 0.28)))
    d.line([(x, y + thickness * 0.12) for x, y in top], fill=shade(wood, 1.25), width=max(1, int(thickness * 0.16)))
    for _ in range(6):
        x = rng.uniform(0, w)
        y = y_at(x) + rng.uniform(0.35, 0.6) * thickness
        d.line(
            (x, y, x + rng.uniform(0.03, 0.08) * w, y + rng.uniform(-1, 1)),
            fill=shade(wood, 0.75),
            width=max(1, int(thickness * 0.08)),
        )


def render_bird(attrs: BirdAttributes, size: int = 64, rng: np.random.Generator | None = None) -> RenderedBird:
    """Draw one bird with every attribute of ``attrs`` visible (anti-aliased).

    The bird and branch are drawn at ``SUPERSAMPLE`` times ``size`` and box-filtered down. The
    bird stands on a branch (three forward toes and a hind toe with dark claws grip it) in
    front of its habitat; pose, position, scale and colours jitter with ``rng``.

    Args:
        attrs: the bird's attributes.
        size: output side in pixels (>= 32; 64, 128 and 256 are the usual ones).
        rng: a NumPy generator (a fixed default seed 0 when None).

    Raises:
        ValueError: if ``size`` < 32.
    """
    if not isinstance(size, int) or size < 32:
        raise ValueError(f"size={size!r}: images must be at least 32 pixels wide (64/128/256 are typical)")
    rng = np.random.default_rng(0) if rng is None else rng
    ss = SUPERSAMPLE
    w = size * ss
    col: dict[str, RGB] = {
        name.removesuffix("_color"): jitter_colour(getattr(attrs, name), rng) for name in COLOUR_ATTRIBUTES
    }
    scale = SIZE_SCALE[attrs.size] * rng.uniform(0.96, 1.04) * w
    margin = 0.03 * w
    cx = rng.uniform(margin + 0.68 * scale, w - margin - 0.68 * scale)
    cy = rng.uniform(margin + 0.42 * scale, w - margin - 0.52 * scale)
    direction = 1 if attrs.facing == "right" else -1
    f = _Frame(cx, cy, scale, direction)
    body_angle = math.radians(-18.0 + rng.uniform(-5.0, 5.0))
    ol = f.width(0.018)  # outline width

    # background and perch -------------------------------------------------------------
    # the blurry backdrop needs no supersampling: drawn at 2x, composited at the output size
    backdrop = _background(attrs.background, 2 * size, rng).resize((size, size), Image.Resampling.BOX)
    scene = Image.new("RGBA", (w, w), (0, 0, 0, 0))
    slope = rng.uniform(-0.12, 0.12)
    perch_v = 0.38 + rng.uniform(-0.02, 0.02)
    _, perch_y0 = f.px(0.0, perch_v)

    def perch_y(x: float) -> float:
        return perch_y0 + slope * (x - cx)

    _draw_perch(scene, perch_y, 0.15 * scale, rng)

    bird = Image.new("RGBA", (w, w), (0, 0, 0, 0))
    d = ImageDraw.Draw(bird)

    # tail (behind the body) -------------------------------------------------------------
    tail_len = (0.24 if attrs.tail_length == "short" else 0.44) * rng.uniform(0.95, 1.05)
    bu, bv = _rot(-0.25, 0.03, body_angle)
    tail_dir = math.radians(28.0 + rng.uniform(-6.0, 6.0))
    du, dv = -math.cos(tail_dir), math.sin(tail_dir)
    nu, nv = -dv, du  # normal
    half0, half1 = 0.055, 0.085
    eu, ev = bu + du * tail_len, bv + dv * tail_len
    tail_pts = [
        f.px(bu + nu * half0, bv + nv * half0),
        f.px(eu + nu * half1, ev + nv * half1),
        f.px(eu - du * 0.035, ev - dv * 0.035),
        f.px(eu - nu * half1, ev - nv * half1),
        f.px(bu - nu * half0, bv - nv * half0),
    ]
    d.polygon(tail_pts, fill=col["tail"], outline=shade(col["tail"], 0.45), width=ol)
    mid = 0.6 * tail_len
    tail_anchor = f.px(bu + du * mid, bv + dv * mid)

    # legs and feet (behind the body; they grip the perch) ---------------------------------
    leg_rgb = col["leg"]
    claw_rgb = (38, 32, 28) if attrs.leg_color != "black" else (95, 95, 100)
    leg_w = f.width(0.06)
    toe_w = f.width(0.04)
    claw_w = f.width(0.03)
    leg_anchor = (0.0, 0.0)
    for hip_local_u in (0.04, -0.07):
        hu, hv = _rot(hip_local_u, 0.15, body_angle)
        foot_u = hu - 0.01
        fx, _ = f.px(foot_u, 0.0)
        foot_v = (perch_y(fx) - cy) / scale + 0.005
        d.line([f.px(hu, hv), f.px(foot_u, foot_v)], fill=leg_rgb, width=leg_w)
        toes = [(0.125, 0.025), (0.105, 0.06), (0.075, 0.09), (-0.09, 0.04)]
        for tu, tv in toes:
            end = (foot_u + tu, foot_v + tv)
            d.line([f.px(foot_u, foot_v), f.px(*end)], fill=leg_rgb, width=toe_w)
            sign = 1.0 if tu > 0 else -1.0
            d.line([f.px(*end), f.px(end[0] + sign * 0.015, end[1] + 0.04)], fill=claw_rgb, width=claw_w)
        leg_anchor = f.px(hu + (foot_u - hu) * 0.6, hv + (foot_v - hv) * 0.6)

    # body: back colour, belly clipped to the body ---------------------------------------------
    body_pts = f.ellipse(0.0, 0.0, 0.31, 0.20, body_angle)
    d.polygon(body_pts, fill=col["back"])
    body_mask = _mask(w, lambda m: m.polygon(body_pts, fill=255))
    bcu, bcv = _rot(0.06, 0.11, body_angle)
    belly_pts = f.ellipse(bcu, bcv, 0.28, 0.15, body_angle)
    _paint(bird, col["belly"], ImageChops.multiply(body_mask, _mask(w, lambda m: m.polygon(belly_pts, fill=255))))
    _paint(
        bird,
        shade(col["belly"], 0.55),
        ImageChops.multiply(body_mask, _mask(w, lambda m: m.polygon(belly_pts, outline=255, width=ol))),
    )
    d.polygon(body_pts, outline=shade(col["back"], 0.45), width=ol)

    # wing with its pattern -----------------------------------------------------------------
    wing_angle = body_angle + math.radians(8.0)
    wcu, wcv = _rot(-0.07, -0.015, body_angle)
    wing_pts = f.ellipse(wcu, wcv, 0.25, 0.088, wing_angle)
    d.polygon(wing_pts, fill=col["wing"])
    mark = marking_colour(attrs.wing_color)
    mark_rgb = (250, 250, 248) if mark == "white" else (25, 25, 28)
    wing_mask = _mask(w, lambda m: m.polygon(wing_pts, fill=255))
    if attrs.wing_pattern == "wing_bars":
        bars = Image.new("L", (w, w), 0)
        bd = ImageDraw.Draw(bars)
        for a in (0.03, -0.075):
            p0 = _rot(a, -0.12, wing_angle)
            p1 = _rot(a, 0.12, wing_angle)
            bd.line([f.px(wcu + p0[0], wcv + p0[1]), f.px(wcu + p1[0], wcv + p1[1])], fill=255, width=f.width(0.042))
        _paint(bird, mark_rgb, ImageChops.multiply(wing_mask, bars))
    elif attrs.wing_pattern == "spotted":
        spots = Image.new("L", (w, w), 0)
        sd = ImageDraw.Draw(spots)
        r = 0.028 * scale
        for a in (-0.13, -0.04, 0.05):
            for b in (-0.035, 0.035):
                pu, pv = _rot(a + rng.uniform(-0.012, 0.012) + (0.045 if b > 0 else 0.0), b, wing_angle)
                x, y = f.px(wcu + pu, wcv + pv)
                sd.ellipse((x - r, y - r, x + r, y + r), fill=255)
        _paint(bird, mark_rgb, ImageChops.multiply(wing_mask, spots))
    d.polygon(wing_pts, outline=shade(col["wing"], 0.45), width=ol)
    # wing anchor: the front part of the wing, before the first bar / spot column
    au, av = _rot(0.15, 0.0, wing_angle)
    wing_anchor = f.px(wcu + au, wcv + av)

    # head: face in the belly colour, crown cap on top ------------------------------------
    hu, hv = 0.315 + rng.uniform(-0.015, 0.015), -0.245 + rng.uniform(-0.015, 0.015)
    hr = 0.155
    hx, hy = f.px(hu, hv)
    rpx = hr * scale
    head_box = (hx - rpx, hy - rpx, hx + rpx, hy + rpx)
    d.ellipse(head_box, fill=col["belly"])
    head_mask = _mask(w, lambda m: m.ellipse(head_box, fill=255))
    cap_line = hy - 0.01 * scale
    cap = _mask(w, lambda m: m.rectangle((0, 0, w, cap_line), fill=255))
    _paint(bird, col["crown"], ImageChops.multiply(head_mask, cap))
    # eye marking and eye
    ex, ey = f.px(hu + 0.045, hv + 0.025)
    er = 0.03 * scale
    if attrs.eye_marking == "eye_ring":
        ring = 0.058 * scale
        ring_rgb = (250, 250, 248) if marking_colour(attrs.belly_color) == "white" else (25, 25, 28)
        d.ellipse((ex - ring, ey - ring, ex + ring, ey + ring), fill=ring_rgb)
    elif attrs.eye_marking == "eyebrow":
        brow_rgb = (250, 250, 248) if marking_colour(attrs.crown_color) == "white" else (25, 25, 28)
        brow = [f.px(hu - 0.07, hv - 0.03), f.px(hu + 0.02, hv - 0.045), f.px(hu + 0.11, hv - 0.03)]
        d.line(brow, fill=brow_rgb, width=f.width(0.036), joint="curve")
    d.ellipse((ex - er, ey - er, ex + er, ey + er), fill=(18, 16, 16))
    gl = 0.4 * er
    gx, gy = ex + direction * 0.35 * er, ey - 0.35 * er
    d.ellipse((gx - gl, gy - gl, gx + gl, gy + gl), fill=(235, 235, 235))
    d.ellipse(head_box, outline=shade(col["crown"], 0.45), width=ol)
    crown_anchor = f.px(hu, hv - 0.1)

    # bill --------------------------------------------------------------------------------
    bill_len = (0.10 if attrs.bill_length == "short" else 0.24) * rng.uniform(0.95, 1.05)
    droop = 0.0 if attrs.bill_length == "short" else 0.03
    b0u = hu + hr * 0.82
    bill_pts = [
        f.px(b0u, hv - 0.035),
        f.px(b0u + bill_len * 0.55, hv - 0.005 + droop * 0.4),
        f.px(b0u + bill_len, hv + 0.012 + droop),
        f.px(b0u + bill_len * 0.5, hv + 0.03 + droop * 0.5),
        f.px(b0u, hv + 0.045),
    ]
    d.polygon(bill_pts, fill=col["bill"], outline=shade(col["bill"], 0.45), width=ol)

    # anchors in body units
    back_anchor = f.px(*_rot(0.17, -0.095, body_angle))
    belly_anchor = f.px(*_rot(0.20, 0.06, body_angle))

    # bounding box, composite, downsample ------------------------------------------------------
    box = bird.getchannel("A").getbbox()
    if box is None:  # cannot happen for a valid pose; guard for clarity
        raise RuntimeError("render_bird drew nothing; please report this as a bug")
    x0, y0, x1, y1 = box
    bbox = (x0 / ss, y0 / ss, (x1 - x0) / ss, (y1 - y0) / ss)
    scene.alpha_composite(bird)
    front = scene.resize((size, size), Image.Resampling.BOX)  # exact supersampling; premultiplied internally
    out = backdrop.convert("RGBA")
    out.alpha_composite(front)
    out = out.convert("RGB")
    anchors = {
        "crown": crown_anchor,
        "back": back_anchor,
        "belly": belly_anchor,
        "wing": wing_anchor,
        "tail": tail_anchor,
        "leg": leg_anchor,
    }
    return RenderedBird(
        image=out,
        bbox=bbox,
        anchors={k: (v[0] / ss, v[1] / ss) for k, v in anchors.items()},
        colours=col,
    )


# --------------------------------------------------------------------------------------------
# Captions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caption:
    """A caption and the attributes it mentions (attribute name -> the bird's value)."""

    text: str
    mentions: dict[str, str]


def _pick(options: Sequence[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def _phrases(a: BirdAttributes, chosen: set[str], rng: np.random.Generator) -> list[tuple[str, tuple[str, ...]]]:
    """Noun phrases for the chosen part attributes, each with the attributes it names.

    Colour words always come right before the part noun they describe.
    """
    out: list[tuple[str, tuple[str, ...]]] = []

    def add(options: Sequence[str], names: tuple[str, ...], **values: str) -> None:
        out.append((_pick(options, rng).format(**values), names))

    if "crown_color" in chosen:
        add(("a {c} crown", "a {c} head", "a {c} cap", "a {c} crown"), ("crown_color",), c=a.crown_color)
    if "back_color" in chosen:
        add(("a {c} back", "{c} back feathers", "a {c} mantle"), ("back_color",), c=a.back_color)
    if "belly_color" in chosen:
        add(
            ("a {c} belly", "a {c} abdomen", "a {c} breast", "a {c} chest", "{c} belly feathers"),
            ("belly_color",),
            c=a.belly_color,
        )
    m = marking_colour(a.wing_color)
    if "wing_color" in chosen and "wing_pattern" in chosen:
        options = {
            "plain": ("plain {c} wings", "solid {c} wings", "{c} wings without markings"),
            "wing_bars": ("{c} wings with {m} wing bars", "{c} wings with {m} wingbars", "{c} wings with two {m} bars"),
            "spotted": ("{c} wings with {m} spots", "{c} wings covered in {m} spots"),
        }[a.wing_pattern]
        add(options, ("wing_color", "wing_pattern"), c=a.wing_color, m=m)
    elif "wing_color" in chosen:
        add(("{c} wings", "{c} wing feathers", "{c} secondaries", "{c} primaries"), ("wing_color",), c=a.wing_color)
    elif "wing_pattern" in chosen:
        options = {
            "plain": ("plain wings", "wings without markings"),
            "wing_bars": ("{m} wing bars", "{m} wingbars", "wing bars"),
            "spotted": ("{m} spots on its wings", "spotted wings"),
        }[a.wing_pattern]
        add(options, ("wing_pattern",), m=m)
    if "tail_color" in chosen and "tail_length" in chosen:
        add(("a {l} {c} tail", "{l} {c} tail feathers"), ("tail_color", "tail_length"), l=a.tail_length, c=a.tail_color)
    elif "tail_color" in chosen:
        add(("a {c} tail", "{c} tail feathers", "{c} rectrices"), ("tail_color",), c=a.tail_color)
    elif "tail_length" in chosen:
        add(("a {l} tail", "{l} tail feathers"), ("tail_length",), l=a.tail_length)
    if "bill_color" in chosen and "bill_length" in chosen:
        add(("a {l} {c} bill", "a {l} {c} beak"), ("bill_color", "bill_length"), l=a.bill_length, c=a.bill_color)
    elif "bill_color" in chosen:
        add(("a {c} bill", "a {c} beak"), ("bill_color",), c=a.bill_color)
    elif "bill_length" in chosen:
        options = {
            "short": ("a short bill", "a short beak", "a stubby bill", "a short pointed beak"),
            "long": ("a long bill", "a long beak", "a long pointed bill", "a long thin beak"),
        }[a.bill_length]
        add(options, ("bill_length",))
    if "eye_marking" in chosen:
        if a.eye_marking == "eye_ring":
            ring = marking_colour(a.belly_color)
            add(("an eye ring", "a ring around its eye", "a {m} eye ring", "a {m} eyering"), ("eye_marking",), m=ring)
        else:
            brow = marking_colour(a.crown_color)
            add(
                ("an eyebrow", "a {m} eyebrow", "a {m} superciliary", "a {m} stripe above its eye"),
                ("eye_marking",),
                m=brow,
            )
    if "leg_color" in chosen:
        add(
            (
                "{c} feet",
                "{c} legs",
                "{c} tarsus and feet",
                "{c} tarsi",
                "{c} legs and feet",
                "{c} feet with dark claws",
            ),
            ("leg_color",),
            c=a.leg_color,
        )
    return out


_SIZE_WORDS: dict[str, tuple[str, ...]] = {
    "small": ("small", "small", "little"),
    "medium": ("medium", "medium sized", "medium sized"),
    "large": ("large", "large", "big"),
}
_FRAMES_ADJ = (
    "a {adj} bird with {p}",
    "this is a {adj} bird with {p}",
    "this {adj} bird has {p}",
    "the {adj} bird has {p}",
    "a {adj} bird that has {p}",
    "this is a {adj} bird that has {p}",
)
_FRAMES_ADJ_ONLY = ("this is a {adj} bird", "a {adj} bird", "this bird is a {adj} bird")
_FRAMES = (
    "this bird has {p}",
    "the bird has {p}",
    "a bird with {p}",
    "this is a bird with {p}",
    "this particular bird has {p}",
    "the bird in the picture has {p}",
)


def caption_bird(
    attrs: BirdAttributes, rng: np.random.Generator, n_min: int = 2, n_max: int = 5, max_words: int = 18
) -> Caption:
    """One CUB-like caption that is true for ``attrs``, naming a random subset of attributes.

    Between ``n_min`` and ``n_max`` bird attributes (never ``facing``/``background``, never an
    absent eye marking) are mentioned, with synonyms for the parts (crown/head, belly/breast,
    bill/beak, feet/legs/tarsus, ...). Colour words always come right before the part they
    describe. Output is lower-case ASCII without trailing spaces. Phrases are dropped (down to
    ``n_min`` mentions) while the caption has more than ``max_words`` words (``\\w+`` tokens),
    so that AttnGAN's 18-word cut-off rarely removes a mentioned attribute.

    Raises:
        ValueError: if ``1 <= n_min <= n_max`` does not hold or ``max_words`` < 1.
    """
    if not 1 <= n_min <= n_max or max_words < 1:
        raise ValueError(f"need 1 <= n_min <= n_max and max_words >= 1, got {n_min}, {n_max}, {max_words}")
    available = [n for n in BIRD_ATTRIBUTES if not (n == "eye_marking" and attrs.eye_marking == "none")]
    k = min(len(available), int(rng.integers(n_min, n_max + 1)))
    chosen = {available[int(i)] for i in rng.choice(len(available), size=k, replace=False)}
    adjectives: list[tuple[str, str]] = []
    if "size" in chosen:
        adjectives.append((_pick(_SIZE_WORDS[attrs.size], rng), "size"))
    if "back_color" in chosen and rng.random() < 0.5:
        adjectives.append((attrs.back_color, "back_color"))
        phrase_set = chosen - {"back_color"}
    else:
        phrase_set = set(chosen)
    phrases = _phrases(attrs, phrase_set, rng)
    phrases = [phrases[int(i)] for i in rng.permutation(len(phrases))]
    frame: str = _pick(_FRAMES_ADJ if adjectives else _FRAMES, rng)
    frame_only = _pick(_FRAMES_ADJ_ONLY, rng)
    serial_comma = rng.random() < 0.3
    adj = " ".join(word for word, _ in adjectives)

    def build(items: list[tuple[str, tuple[str, ...]]]) -> str:
        if not items:
            text = frame_only.format(adj=adj)
        else:
            words = [p for p, _ in items]
            if len(words) == 1:
                joined = words[0]
            else:
                joined = ", ".join(words[:-1]) + ("," if serial_comma and len(words) > 2 else "") + f" and {words[-1]}"
            text = frame.format(adj=adj, p=joined)
        return re.sub(r"\ba (?=[aeiou])", "an ", text.strip())

    def n_mentions(items: list[tuple[str, tuple[str, ...]]]) -> int:
        return len(adjectives) + sum(len(names) for _, names in items)

    text = build(phrases)
    while len(re.findall(r"\w+", text)) > max_words and len(phrases) > 1:
        shorter = phrases[:-1]
        if n_mentions(shorter) < n_min:
            break
        phrases = shorter
        text = build(phrases)
    if len(re.findall(r"\w+", text)) > max_words:  # fall back to the shortest frame
        frame = _FRAMES_ADJ[0] if adjectives else _FRAMES[2]
        text = build(phrases)
    named = {n for _, n in adjectives} | {n for _, names in phrases for n in names}
    mentions = {name: getattr(attrs, name) for name in BIRD_ATTRIBUTES if name in named}
    return Caption(text=text, mentions=mentions)


# --------------------------------------------------------------------------------------------
# The dataset on disk
# --------------------------------------------------------------------------------------------


#: File suffix of each image format ToyBirds can write.
IMAGE_SUFFIX: dict[str, str] = {"jpg": ".jpg", "png": ".png"}
#: JPEG quality of the default format (with 4:4:4 chroma, i.e. no subsampling).
JPEG_QUALITY = 95


def save_image(image: Image.Image, fp: str | Path | io.BytesIO, image_format: str) -> None:
    """Write ``image`` as ToyBirds stores it: ``"jpg"`` (JPEG quality 95, 4:4:4) or ``"png"``."""
    if image_format == "jpg":
        image.save(fp, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    elif image_format == "png":
        image.save(fp, format="PNG")
    else:
        raise ValueError(f"image_format={image_format!r}: choose one of {sorted(IMAGE_SUFFIX)}")


def as_stored(image: Image.Image, image_format: str) -> Image.Image:
    """``image`` as a reader sees it after ToyBirds wrote it in ``image_format`` (JPEG's loss included)."""
    buf = io.BytesIO()
    save_image(image, buf, image_format)
    buf.seek(0)
    with Image.open(buf) as stored:
        return stored.convert("RGB")


def _image_rngs(seed: int, image_index: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent generators (individual, render, captions) for one image."""
    ss = np.random.SeedSequence(entropy=seed, spawn_key=(1, image_index))
    a, b, c = ss.spawn(3)
    return np.random.default_rng(a), np.random.default_rng(b), np.random.default_rng(c)


def _species_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(0,)))


def _render_job(job: tuple[int, int, str, str, BirdAttributes, int, str, str]) -> dict[str, Any]:
    """Render, caption and write one image (runs in a worker). Returns its jsonl record."""
    seed, index, class_dir, img_name, prototype, size, root, image_format = job
    rng_ind, rng_img, rng_cap = _image_rngs(seed, index)
    attrs = sample_individual(prototype, rng_ind)
    rendered = render_bird(attrs, size, rng_img)
    captions = [caption_bird(attrs, rng_cap) for _ in range(CAPTIONS_PER_IMAGE)]
    path = Path(root) / "CUB_200_2011" / "images" / class_dir / f"{img_name}{IMAGE_SUFFIX[image_format]}"
    save_image(rendered.image, path, image_format)
    text = "\n".join(c.text for c in captions) + "\n"
    (Path(root) / "text" / class_dir / f"{img_name}.txt").write_text(text, encoding="ascii")
    return {
        "image_id": index + 1,
        "key": f"{class_dir}/{img_name}",
        "attributes": attrs.to_dict(),
        "attribute_indices": attrs.to_indices(),
        "bbox": list(rendered.bbox),
        "captions": [{"text": c.text, "mentions": c.mentions} for c in captions],
    }


def _prepare_out_dir(root: Path, overwrite: bool) -> None:
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"out_dir {root} exists and is not a directory; pass a directory path")
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"out_dir {root} is not empty; choose an empty or new directory, or pass "
                "overwrite=True (CLI: --overwrite) to replace a previous ToyBirds dataset there"
            )
        if not (root / "toybirds.json").is_file():
            raise FileExistsError(
                f"out_dir {root} is not empty and holds no toybirds.json, so it is not a ToyBirds "
                "dataset; refusing to overwrite it - choose an empty or new directory"
            )
        for name in _MANAGED:
            p = root / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    root.mkdir(parents=True, exist_ok=True)


def _dump_pickle(obj: list[Any], path: Path) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)


def make_toybirds(
    out_dir: str | Path,
    size: int = 64,
    seed: int = 0,
    n_images: int | None = None,
    n_species: int = CUB_N_SPECIES,
    workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
    image_format: str = "jpg",
) -> Path:
    """Generate the ToyBirds dataset in AttnGAN's birds layout and return its root.

    ``out_dir`` then holds ``CUB_200_2011/`` (``images/<class>/<img>.jpg``, ``images.txt``,
    ``bounding_boxes.txt``, ``classes.txt``, ``image_class_labels.txt``,
    ``train_test_split.txt``), ``text/<class>/<img>.txt`` (10 captions), ``train/`` and
    ``test/`` (``filenames.pickle``, ``class_info.pickle``), and the ground truth
    ``attributes.jsonl``, ``species.json`` and ``toybirds.json``. The split is AttnGAN's, by
    species (first 75 % train); ``train_test_split.txt`` records the same split.

    Output is byte-identical for the same arguments whatever ``workers`` is: every image uses
    its own generator seeded from (``seed``, image index).

    Args:
        out_dir: dataset root (created; must be empty unless ``overwrite``).
        size: image side in pixels (>= 32).
        seed: non-negative integer seed.
        n_images: total images (default: CUB's 11,788 for 200 species).
        n_species: species (default 200), reduced to ``n_images`` when that is smaller.
        workers: processes (default ``os.cpu_count()``; 1 renders in this process).
        progress: show a tqdm progress bar.
        overwrite: replace a previous ToyBirds dataset in ``out_dir``.
        image_format: ``"jpg"`` (default: JPEG at quality 95 without chroma subsampling, the
            ``images/<key>.jpg`` that DF-GAN's, AttnGAN's and SSA-GAN's loaders open) or ``"png"``
            (lossless; what datasets made before the JPEG default hold).

    Raises:
        ValueError: on a bad size, seed, count or worker number.
        FileExistsError: if ``out_dir`` is not empty (and not an overwritable ToyBirds set).
    """
    if not isinstance(size, int) or size < 32:
        raise ValueError(f"size={size!r}: images must be at least 32 pixels wide (64/128/256 are typical)")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r}: need a non-negative integer")
    if image_format not in IMAGE_SUFFIX:
        raise ValueError(f"image_format={image_format!r}: choose one of {sorted(IMAGE_SUFFIX)}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers={workers!r}: need a positive integer (or None for os.cpu_count())")
    plan = plan_dataset(n_images, n_species)
    species = sample_species(plan.n_species, _species_rng(seed))
    root = Path(out_dir)
    _prepare_out_dir(root, overwrite)
    cub = root / "CUB_200_2011"
    for sp in species:
        (cub / "images" / sp.class_dir).mkdir(parents=True, exist_ok=True)
        (root / "text" / sp.class_dir).mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        (root / split).mkdir(exist_ok=True)

    jobs: list[tuple[int, int, str, str, BirdAttributes, int, str, str]] = []
    image_class: list[int] = []
    for sp, count in zip(species, plan.counts):
        for j in range(count):
            jobs.append((seed, len(jobs), sp.class_dir, f"{sp.name}_{j + 1:04d}", sp.prototype, size, str(root),
                         image_format))
            image_class.append(sp.class_id)

    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    n_workers = max(1, min(n_workers, len(jobs)))
    records: list[dict[str, Any]] = []
    with tqdm(total=len(jobs), disable=not progress, desc="ToyBirds", unit="img") as bar:
        if n_workers == 1:
            for job in jobs:
                records.append(_render_job(job))
                bar.update(1)
        else:
            chunk = max(1, min(64, len(jobs) // (n_workers * 8)))
            with multiprocessing.get_context().Pool(n_workers) as pool:
                for rec in pool.imap(_render_job, jobs, chunksize=chunk):
                    records.append(rec)
                    bar.update(1)

    by_id = {sp.class_id: sp for sp in species}
    split_of = {sp.class_id: ("train" if sp.class_id <= plan.n_train_species else "test") for sp in species}
    lines_images, lines_boxes, lines_labels, lines_split, jsonl = [], [], [], [], []
    keys: dict[str, list[str]] = {"train": [], "test": []}
    classes: dict[str, list[int]] = {"train": [], "test": []}
    for rec, class_id in zip(records, image_class):
        image_id = rec["image_id"]
        split = split_of[class_id]
        x, y, bw, bh = rec["bbox"]
        lines_images.append(f"{image_id} {rec['key']}{IMAGE_SUFFIX[image_format]}")
        lines_boxes.append(f"{image_id} {x:.2f} {y:.2f} {bw:.2f} {bh:.2f}")
        lines_labels.append(f"{image_id} {class_id}")
        lines_split.append(f"{image_id} {1 if split == 'train' else 0}")
        keys[split].append(rec["key"])
        classes[split].append(class_id)
        full = {
            "image_id": image_id,
            "key": rec["key"],
            "class_id": class_id,
            "class_dir": by_id[class_id].class_dir,
            "split": split,
        }
        full.update({k: rec[k] for k in ("attributes", "attribute_indices", "bbox", "captions")})
        jsonl.append(json.dumps(full, sort_keys=True))

    def write_lines(path: Path, lines: list[str]) -> None:
        path.write_text("".join(line + "\n" for line in lines), encoding="ascii")

    write_lines(cub / "images.txt", lines_images)
    write_lines(cub / "bounding_boxes.txt", lines_boxes)
    write_lines(cub / "image_class_labels.txt", lines_labels)
    write_lines(cub / "train_test_split.txt", lines_split)
    write_lines(cub / "classes.txt", [f"{sp.class_id} {sp.class_dir}" for sp in species])
    for split in ("train", "test"):
        _dump_pickle(keys[split], root / split / "filenames.pickle")
        _dump_pickle(classes[split], root / split / "class_info.pickle")
    write_lines(root / "attributes.jsonl", jsonl)
    species_doc = [
        {
            "class_id": sp.class_id,
            "class_dir": sp.class_dir,
            "name": sp.name,
            "split": split_of[sp.class_id],
            "n_images": count,
            "prototype": sp.prototype.to_dict(),
        }
        for sp, count in zip(species, plan.counts)
    ]
    (root / "species.json").write_text(json.dumps(species_doc, indent=1, sort_keys=True) + "\n", encoding="ascii")
    meta = {
        "generator": "csagan.data.toybirds",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "size": size,
        "image_format": image_format,
        "captions_per_image": CAPTIONS_PER_IMAGE,
        "n_images": plan.n_images,
        "n_species": plan.n_species,
        "n_train_species": plan.n_train_species,
        "n_test_species": plan.n_species - plan.n_train_species,
        "n_train_images": plan.n_train_images,
        "n_test_images": plan.n_test_images,
        "attributes": {k: list(v) for k, v in ATTRIBUTE_VALUES.items()},
    }
    (root / "toybirds.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="ascii")
    return root


def preview_grid(rows: int = 8, cols: int = 8, size: int = 64, seed: int = 0) -> Image.Image:
    """A ``rows`` x ``cols`` mosaic of random ToyBirds individuals (for the book and for eyeballing)."""
    rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(2,)))
    grid = Image.new("RGB", (cols * size, rows * size), (255, 255, 255))
    for k in range(rows * cols):
        proto = sample_attributes(rng)
        attrs = sample_individual(proto, rng)
        grid.paste(render_bird(attrs, size, rng).image, ((k % cols) * size, (k // cols) * size))
    return grid
