"""What a reproduction study is: its variants, the paper's claims and numbers, and the protocol.

* :data:`STUDY_VARIANTS`, :data:`PAPER`, :data:`CLAIMS`, :data:`METRIC_KEYS`: the eight models of the
  paper's Tables 1, 3 and 4, the numbers printed there, the orderings the paper claims, and the
  measured metrics the verdicts use.
* :class:`StudyConfig`: the protocol (how every run is trained and scored, and which runs there
  are), frozen; :data:`STUDY_PRESETS` names the protocols the book uses and :func:`study_config`
  resolves a preset plus ``key=value`` overrides with the shared parser of :mod:`csagan.settings`.
* :class:`StudyPaths`: where the data, the DAMSM, the evaluator, the run folders and the results are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from csagan.settings import Settings, parse_override

__all__ = [
    "CLAIMS",
    "METRIC_KEYS",
    "PAPER",
    "STUDY_PRESETS",
    "STUDY_VARIANTS",
    "Claim",
    "StudyConfig",
    "StudyPaths",
    "protocol_of",
    "study_config",
]

#: The variants of the study, in training order (``ssagan-fixed-mask`` reads ``csagan``'s masks).
STUDY_VARIANTS: tuple[str, ...] = (
    "csagan", "csagan-no-ssf", "csagan-no-damsm", "csagan-no-csa", "csagan-no-g0",
    "ssagan", "ssagan-fixed-mask", "dfgan",
)  # fmt: skip

#: Metric name -> (where it sits in an evaluation report's ``metrics``, higher is better).
METRIC_KEYS: dict[str, tuple[tuple[str, ...], bool]] = {
    "domain_fid": (("dfid", "fid"), False),
    "domain_is": (("dis", "mean"), True),
    "attribute_accuracy": (("align", "attribute_accuracy"), True),
    "r_precision": (("rprec", "mean"), True),
}

#: The paper's numbers (Tables 1, 3, 4): CUB IS, CUB FID, COCO FID; ``None`` where not reported.
PAPER: dict[str, dict[str, float | None]] = {
    "csagan": {"cub_is": 5.44, "cub_fid": 17.04, "coco_fid": 13.59},
    "csagan-no-ssf": {"cub_is": 4.21, "cub_fid": 17.72, "coco_fid": 16.26},
    "csagan-no-damsm": {"cub_is": 4.97, "cub_fid": 18.61, "coco_fid": 14.79},
    "csagan-no-csa": {"cub_is": 5.07, "cub_fid": 18.02, "coco_fid": 19.65},
    "csagan-no-g0": {"cub_is": 5.19, "cub_fid": 17.32, "coco_fid": 13.62},
    "ssagan": {"cub_is": 5.17, "cub_fid": 17.59, "coco_fid": 19.37},
    "ssagan-fixed-mask": {"cub_is": 5.37, "cub_fid": 17.48, "coco_fid": 13.64},
    "dfgan": {"cub_is": 4.86, "cub_fid": 19.24, "coco_fid": 28.92},
}


@dataclass(frozen=True)
class Claim:
    """An ordering the paper claims: ``better`` beats ``worse`` (in its table ``table``)."""

    name: str
    better: str
    worse: str
    table: str


CLAIMS: tuple[Claim, ...] = (
    Claim("SSF helps", "csagan", "csagan-no-ssf", "Table 3"),
    Claim("the DAMSM loss helps", "csagan", "csagan-no-damsm", "Table 3"),
    Claim("CSA helps", "csagan", "csagan-no-csa", "Table 3"),
    Claim("G0 helps", "csagan", "csagan-no-g0", "Table 4"),
    Claim("CSA-GAN's fixed masks help SSA-GAN", "ssagan-fixed-mask", "ssagan", "Table 4"),
    Claim("CSA-GAN beats SSA-GAN", "csagan", "ssagan", "Table 1"),
    Claim("SSA-GAN beats DF-GAN", "ssagan", "dfgan", "Table 1"),
    Claim("CSA-GAN beats DF-GAN", "csagan", "dfgan", "Table 1"),
)


@dataclass(frozen=True)
class StudyConfig(Settings):
    """The protocol of a study: which runs, how each is trained, when and how it is scored.

    Every run trains ``max_steps × batch_size`` images with the train preset ``train_preset``
    plus ``overrides`` (model or train fields, ``key=value``), is scored at each step of
    ``snapshot_steps`` and at ``max_steps`` (an fp16 copy of the generator is kept at each),
    on ``eval_images`` generated images (a seeded subset of ``passes`` passes over the test
    captions) with the metrics ``metrics`` of :func:`csagan.evaluate.evaluate_run`.
    """

    name: str = "custom"
    variants: tuple[str, ...] = STUDY_VARIANTS
    seeds: tuple[int, ...] = (0, 1)
    train_preset: str = "toybirds-cpu"
    max_steps: int = 600
    batch_size: int = 16
    snapshot_steps: tuple[int, ...] = ()
    overrides: tuple[str, ...] = ()
    eval_images: int = 1000
    passes: int = 1
    rprec_candidates: int = 100
    metrics: tuple[str, ...] = ("dfid", "dis", "align", "rprec")

    settings_label: ClassVar[str] = "study setting"

    def __post_init__(self) -> None:
        self.check_fields()
        unknown = sorted(set(self.variants) - set(STUDY_VARIANTS))
        if unknown:
            raise ValueError(f"unknown study variant(s) {unknown}; choose from {list(STUDY_VARIANTS)}.")
        if "ssagan-fixed-mask" in self.variants and "csagan" not in self.variants:
            raise ValueError("variant 'ssagan-fixed-mask' takes its masks from the 'csagan' runs; include 'csagan'.")
        if not self.seeds:
            raise ValueError("give at least one seed.")
        if self.max_steps < 1 or self.batch_size < 1 or self.eval_images < 2:
            raise ValueError("max_steps and batch_size must be >= 1 and eval_images >= 2.")
        bad = [s for s in self.snapshot_steps if not 0 < s < self.max_steps]
        if bad or list(self.snapshot_steps) != sorted(set(self.snapshot_steps)):
            raise ValueError(f"snapshot_steps {list(self.snapshot_steps)} must increase strictly and lie in "
                             f"(0, max_steps={self.max_steps}); max_steps itself is always scored.")  # fmt: skip
        for item in self.overrides:
            key = parse_override(item)[0].split(".")[-1]
            if key in _OWN_KEYS:
                raise ValueError(f"override {item!r}: the study sets {key} itself (use the StudyConfig field or paths).")

    @property
    def images_per_run(self) -> int:
        """The image budget of every run (per process)."""
        return self.max_steps * self.batch_size

    @property
    def score_steps(self) -> tuple[int, ...]:
        """The steps at which every run is scored: the snapshots and the end."""
        return (*self.snapshot_steps, self.max_steps)

#: Train fields the study sets from its own fields and paths (refused in ``overrides``).
_OWN_KEYS = ("max_steps", "batch_size", "epochs", "seed", "damsm_dir", "mask_source")
#: Fields that choose *which* runs a study makes, not *how* each run is made: a result stays valid
#: when a study is rerun with more (or fewer) variants or seeds, or under another preset name.
_SELECTION_KEYS = ("name", "variants", "seeds")


@dataclass(frozen=True)
class StudyPaths:
    """Where a study reads and writes (not part of the protocol; ``evaluator`` None = the shipped one)."""

    data_dir: str
    damsm_dir: str
    runs_dir: str
    results_dir: str
    evaluator: str | None = None


#: The book's protocols. ``early``: 600 steps × 16 images at 64 px (about one epoch of ToyBirds'
#: training split), two seeds, where every variant still draws colour blocks. ``trained``: the
#: reduced-scale protocol chosen with ``benchmarks/learning_speed.py`` (benchmarks/README.md): 32 px,
#: both learning rates doubled (the paper's 1 : 2 ratio kept), 3,000 steps × 24 images, scored after
#: 9,600, 19,200, 38,400, 57,600 and 72,000 images, three seeds. ``smoke``: every code path in
#: seconds (tests).
STUDY_PRESETS: dict[str, StudyConfig] = {
    "early": StudyConfig(name="early"),
    "trained": StudyConfig(
        name="trained", seeds=(0, 1, 2), max_steps=3000, batch_size=24, snapshot_steps=(400, 800, 1600, 2400),
        overrides=("image_size=32", "lr_g=4e-4", "lr_d=8e-4"),
    ),
    "smoke": StudyConfig(
        name="smoke", seeds=(0,), train_preset="smoke", max_steps=4, batch_size=4, snapshot_steps=(2,),
        eval_images=8, rprec_candidates=4,
    ),
}  # fmt: skip


def study_config(preset: str = "early", overrides: Sequence[str] = ()) -> StudyConfig:
    """The preset ``preset`` of :data:`STUDY_PRESETS` with ``key=value`` overrides applied.

    Raises:
        ValueError: an unknown preset or field, or a value of the wrong type.
    """
    if preset not in STUDY_PRESETS:
        raise ValueError(f"unknown study preset {preset!r}; choose from {list(STUDY_PRESETS)}.")
    return STUDY_PRESETS[preset].replace(**StudyConfig.parse_sets(overrides))


def protocol_of(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a result's recorded ``settings`` that a single (variant, seed) result depends on.

    Reads the files of earlier versions too (``preset`` for ``train_preset``, no snapshots).
    """
    flat = dict(settings)
    if "preset" in flat and "train_preset" not in flat:
        flat["train_preset"] = flat.pop("preset")
    flat.setdefault("snapshot_steps", [])
    keep = [f.name for f in dataclasses.fields(StudyConfig) if f.name not in _SELECTION_KEYS]
    keep += ["data_dir", "damsm_dir", "evaluator"]
    out = {k: flat.get(k) for k in keep}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

