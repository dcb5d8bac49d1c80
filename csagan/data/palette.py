"""RGB values of ToyBirds' named colours, with small per-individual jitter.

The names are those of :data:`csagan.data.attributes.COLOURS`. The base values are far apart
(minimum pairwise Euclidean distance > 80 in RGB), and :func:`jitter_colour` moves a colour
by at most ~20 per channel, so the nearest base colour of a jittered colour is always its own
name (:func:`nearest_colour`), which is what an image-side check relies on.
"""

from __future__ import annotations

import colorsys

import numpy as np

RGB = tuple[int, int, int]

#: Base RGB of every named colour.
PALETTE: dict[str, RGB] = {
    "red": (205, 32, 38),
    "orange": (242, 132, 22),
    "yellow": (247, 214, 43),
    "green": (52, 150, 62),
    "blue": (38, 92, 205),
    "brown": (122, 76, 40),
    "black": (28, 28, 30),
    "white": (246, 246, 240),
    "grey": (138, 138, 142),
    "pink": (242, 150, 188),
}

#: Largest hue shift (fraction of the colour wheel) and relative brightness change of a jitter.
HUE_JITTER = 0.015
VALUE_JITTER = 0.07


def base_rgb(name: str) -> RGB:
    """Base RGB of a colour name.

    Raises:
        ValueError: if ``name`` is not one of :data:`COLOURS`.
    """
    if name not in PALETTE:
        raise ValueError(f"unknown colour {name!r}; expected one of {tuple(PALETTE)}")
    return PALETTE[name]


def jitter_colour(name: str, rng: np.random.Generator) -> RGB:
    """The colour ``name`` with a small random hue and brightness change (one individual)."""
    r, g, b = (c / 255.0 for c in base_rgb(name))
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    h = (h + rng.uniform(-HUE_JITTER, HUE_JITTER)) % 1.0
    v = min(1.0, max(0.0, v * (1.0 + rng.uniform(-VALUE_JITTER, VALUE_JITTER))))
    out = colorsys.hsv_to_rgb(h, s, v)
    return (round(out[0] * 255), round(out[1] * 255), round(out[2] * 255))


def shade(rgb: RGB, factor: float) -> RGB:
    """Scale towards black (``factor`` < 1) or white (``factor`` > 1), clipped to [0, 255]."""
    if factor <= 1.0:
        return (int(rgb[0] * factor), int(rgb[1] * factor), int(rgb[2] * factor))
    t = min(1.0, factor - 1.0)
    r, g, b = (round(c + (255 - c) * t) for c in rgb)
    return (r, g, b)


def nearest_colour(rgb: tuple[float, float, float]) -> str:
    """Name of the palette colour nearest to ``rgb`` (Euclidean distance in RGB)."""
    best = min(
        PALETTE.items(),
        key=lambda item: sum((float(a) - float(b)) ** 2 for a, b in zip(rgb, item[1])),
    )
    return best[0]
