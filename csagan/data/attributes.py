"""Attribute schema of the ToyBirds synthetic dataset (plain typed data).

ToyBirds mirrors the structure of CUB-200-2011 (AttnGAN's "birds" layout) with procedurally
drawn birds whose every visible property is a categorical attribute. Because the ground truth
is known exactly, text-image alignment can be measured exactly (an attribute classifier
predicts these attributes from generated images; compare the paper's semantic-consistency
claims, Eqs. (26)-(27) are the distribution metrics that complement it).

This module holds only the schema: attribute names, their allowed values, which attributes
are colours, the few rules that tie attributes together, and the frozen record
:class:`BirdAttributes`. Rendering lives in :mod:`csagan.data.toybirds`, RGB values in
:mod:`csagan.data.palette`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

#: The named colours every colour attribute draws from (RGB values: ``csagan.data.palette``).
COLOURS: tuple[str, ...] = (
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "brown",
    "black",
    "white",
    "grey",
    "pink",
)

#: Every attribute and its allowed values, in a fixed order (the order of
#: :class:`BirdAttributes`' fields). Index ``i`` of a tuple is the class index a classifier uses.
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "crown_color": COLOURS,
    "back_color": COLOURS,
    "belly_color": COLOURS,
    "wing_color": COLOURS,
    "wing_pattern": ("plain", "wing_bars", "spotted"),
    "tail_color": COLOURS,
    "tail_length": ("short", "long"),
    "bill_color": COLOURS,
    "bill_length": ("short", "long"),
    "eye_marking": ("none", "eye_ring", "eyebrow"),
    "leg_color": COLOURS,
    "size": ("small", "medium", "large"),
    "facing": ("left", "right"),
    "background": ("sky", "foliage", "water", "sand"),
}

#: Attributes whose values are names from :data:`COLOURS`.
COLOUR_ATTRIBUTES: tuple[str, ...] = tuple(name for name, values in ATTRIBUTE_VALUES.items() if values is COLOURS)

#: Attributes describing the bird itself (what captions may mention). ``facing`` and
#: ``background`` are scene properties: drawn and recorded, but never captioned.
BIRD_ATTRIBUTES: tuple[str, ...] = tuple(name for name in ATTRIBUTE_VALUES if name not in ("facing", "background"))

#: Pairs of attributes that must differ so that neighbouring parts stay distinguishable
#: (the crown touches the back and the face, which has the belly colour; the wing lies on
#: the back; the belly borders the back).
MUST_DIFFER: tuple[tuple[str, str], ...] = (
    ("crown_color", "back_color"),
    ("crown_color", "belly_color"),
    ("belly_color", "back_color"),
    ("wing_color", "back_color"),
)

#: Light colours: markings drawn on them are black, on all others white.
LIGHT_COLOURS: frozenset[str] = frozenset({"white", "yellow", "pink"})


def marking_colour(ground: str) -> str:
    """Colour of a marking (wing bars, spots, eye ring, eyebrow) drawn on ``ground``.

    White on dark and mid colours, black on light ones (:data:`LIGHT_COLOURS`), so the
    marking is always visible. Captions use it ("black wings with white wing bars").

    Raises:
        ValueError: if ``ground`` is not one of :data:`COLOURS`.
    """
    if ground not in COLOURS:
        raise ValueError(f"unknown colour {ground!r}; expected one of {COLOURS}")
    return "black" if ground in LIGHT_COLOURS else "white"


@dataclass(frozen=True)
class BirdAttributes:
    """One bird's (or one species prototype's) categorical attributes.

    Every field holds a value name from :data:`ATTRIBUTE_VALUES`; construction validates
    them and the :data:`MUST_DIFFER` rule.

    Raises:
        ValueError: on an unknown value or on two neighbouring parts sharing a colour.
    """

    crown_color: str
    back_color: str
    belly_color: str
    wing_color: str
    wing_pattern: str
    tail_color: str
    tail_length: str
    bill_color: str
    bill_length: str
    eye_marking: str
    leg_color: str
    size: str
    facing: str
    background: str

    def __post_init__(self) -> None:
        for name, allowed in ATTRIBUTE_VALUES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"BirdAttributes.{name}={value!r} is not allowed; choose one of {allowed}")
        for first, second in MUST_DIFFER:
            if getattr(self, first) == getattr(self, second):
                raise ValueError(
                    f"BirdAttributes.{first} and .{second} are both {getattr(self, first)!r}; "
                    "neighbouring parts must have different colours"
                )

    def to_dict(self) -> dict[str, str]:
        """Attribute name -> value name, in schema order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_indices(self) -> dict[str, int]:
        """Attribute name -> index of the value in :data:`ATTRIBUTE_VALUES` (classifier targets)."""
        return {name: ATTRIBUTE_VALUES[name].index(value) for name, value in self.to_dict().items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, str]) -> BirdAttributes:
        """Build from a mapping with exactly the schema's keys.

        Raises:
            ValueError: if keys are missing or unknown (the message lists them).
        """
        expected = set(ATTRIBUTE_VALUES)
        given = set(values)
        if given != expected:
            raise ValueError(
                "BirdAttributes.from_dict: missing keys "
                f"{sorted(expected - given)}, unknown keys {sorted(given - expected)}"
            )
        return cls(**{name: str(values[name]) for name in ATTRIBUTE_VALUES})

    def replace(self, **changes: str) -> BirdAttributes:
        """A copy with some attributes changed (validated like the constructor)."""
        merged = self.to_dict()
        unknown = set(changes) - set(merged)
        if unknown:
            raise ValueError(f"unknown attribute names {sorted(unknown)}")
        merged.update(changes)
        return BirdAttributes.from_dict(merged)
