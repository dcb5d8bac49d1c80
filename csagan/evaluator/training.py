"""Training the attribute evaluator on a ToyBirds dataset (:func:`train_evaluator`).

Training data (a choice, documented here and in the saved metadata): ToyBirds splits by
species (AttnGAN's split), so the test species never occur in the train split. Attributes
generalise across species, so all heads are trained on the **train split** only, minus a
stratified 10 % per species held out for validation; the test split (unseen species) is never
trained on, so the ceiling of :func:`csagan.evaluator.alignment.sanity_bounds` on it is honest.
The species head covers the train species (``species_ids`` in the metadata): like Inception's
ImageNet classes for IS, it is a fixed label space in which test-caption images are scored,
not their true labels.

Optionally the attribute heads also see birds with independently random attributes
(:func:`render_random_birds`), shown exactly as the dataset shows its images
(:func:`eval_view`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from csagan.data.attributes import ATTRIBUTE_VALUES
from csagan.data.datasets import TextImageDataset
from csagan.data.layout import apply_transform, crop_to_bbox
from csagan.data.toybirds import as_stored, render_bird, sample_attributes
from csagan.devices import resolve_device
from csagan.evaluator.model import AttributeEvaluator
from csagan.evaluator.weights_io import save_evaluator

__all__ = ["SplitData", "eval_view", "render_random_birds", "train_evaluator"]

logger = logging.getLogger(__name__)

_FACING = "facing"


@dataclass
class SplitData:
    """Images with attribute targets: a dataset split (:func:`train_evaluator`) or random birds
    (:func:`render_random_birds`)."""

    images: Tensor  # uint8 [N, 3, S, S]
    targets: Tensor  # long [N, n_attributes] value indices
    class_ids: list[int] = field(default_factory=list)


def _load_split(dataset: Any, values: Mapping[str, Sequence[str]], progress: bool) -> SplitData:
    """All images of a split (as the dataset's eval transform gives them) and their attribute targets."""
    records = dataset.attributes
    if records is None:
        raise FileNotFoundError(
            f"{Path(dataset.root) / 'attributes.jsonl'} not found: the evaluator trains on ToyBirds ground "
            "truth; make a dataset with `csagan data toybirds --out DIR`"
        )
    n = len(dataset)
    size = dataset.image_size
    images = torch.empty((n, 3, size, size), dtype=torch.uint8)
    targets = torch.empty((n, len(values)), dtype=torch.long)
    names = list(values)
    for i in tqdm(range(n), disable=not progress, desc=f"load {dataset.split}", unit="img"):
        img = dataset[i].image
        images[i] = img.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)
        key = dataset.keys[i]
        rec = records.get(key)
        if rec is None:
            raise ValueError(f"attributes.jsonl has no record for {key!r}; regenerate the dataset")
        for j, name in enumerate(names):
            try:
                targets[i, j] = list(values[name]).index(rec["attributes"][name])
            except (KeyError, ValueError):
                raise ValueError(
                    f"attributes.jsonl record {key!r}: attribute {name!r} missing or not in {tuple(values[name])}"
                ) from None
    return SplitData(images=images, targets=targets, class_ids=list(dataset.class_ids))


def eval_view(bird: Any, image_size: int, image_format: str = "jpg") -> Tensor:
    """A rendered bird (:class:`csagan.data.toybirds.RenderedBird`) as a ToyBirds dataset item shows
    it with the ``eval`` transform: uint8 ``[3, S, S]`` (stored as ``image_format`` like the dataset
    writes it, JPEG's loss included; AttnGAN's box crop of the box as ``bounding_boxes.txt`` stores
    it, then resize and centre crop)."""
    x, y, w, h = (float(f"{v:.2f}") for v in bird.bbox)  # bounding_boxes.txt keeps 2 decimals
    view = crop_to_bbox(as_stored(bird.image, image_format), (int(x), int(y), int(w), int(h)))
    img = apply_transform(view, image_size, "eval", torch.Generator())
    return img.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def render_random_birds(
    n: int,
    image_size: int,
    seed: int,
    values: Mapping[str, Sequence[str]] | None = None,
    progress: bool = False,
    image_format: str = "jpg",
) -> SplitData:
    """``n`` ToyBirds with uniformly random attributes, seen as the dataset's eval view.

    In ToyBirds (as in CUB) a species fixes most attributes, so a classifier trained on the train
    split alone can read a species and recall its colours instead of looking at each part; on the
    unseen test species that shortcut fails. Birds whose attributes are drawn independently
    (:func:`csagan.data.toybirds.sample_attributes`) carry no such correlation. Each one is
    rendered by :func:`csagan.data.toybirds.render_bird`, cropped around its box like AttnGAN
    (:func:`csagan.data.layout.crop_to_bbox`) and resized/centre-cropped like the ``eval``
    transform after a round trip through ``image_format`` (the dataset's storage: ``"jpg"``, the
    ToyBirds default, or ``"png"``), so they look exactly like dataset images. ``class_ids`` are
    all ``-1`` (no species).
    """
    if n < 0:
        raise ValueError(f"n={n}: the number of random birds must be >= 0")
    names = list(ATTRIBUTE_VALUES if values is None else values)
    vals = dict(ATTRIBUTE_VALUES if values is None else values)
    rng = np.random.default_rng([seed, 0x7B1D])
    images = torch.empty((n, 3, image_size, image_size), dtype=torch.uint8)
    targets = torch.empty((n, len(names)), dtype=torch.long)
    for i in tqdm(range(n), disable=not progress, desc="render random birds", unit="img"):
        attrs = sample_attributes(rng)
        images[i] = eval_view(render_bird(attrs, image_size, rng), image_size, image_format)
        record = attrs.to_dict()
        for j, name in enumerate(names):
            targets[i, j] = list(vals[name]).index(record[name])
    return SplitData(images=images, targets=targets, class_ids=[-1] * n)


def _stratified_holdout(class_ids: Sequence[int], fraction: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Indices (train, held-out): ``round(fraction * n_c)`` images of each class with >= 2 images held out."""
    ids = torch.tensor(list(class_ids))
    train: list[Tensor] = []
    held: list[Tensor] = []
    for c in sorted(set(class_ids)):
        idx = torch.nonzero(ids == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        k = min(len(idx) - 1, max(1, round(fraction * len(idx)))) if len(idx) >= 2 and fraction > 0 else 0
        held.append(idx[:k])
        train.append(idx[k:])
    return torch.cat(train).sort().values, torch.cat(held).sort().values


def _augment(x: Tensor, facing_col: int | None, targets: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random shift (±6 %), scale (0.9-1.1) and horizontal flip; a flip swaps ``facing``."""
    b = x.shape[0]
    scale = 1.0 + (torch.rand(b, generator=gen) * 0.2 - 0.1)
    shift = torch.rand(b, 2, generator=gen) * 0.12 - 0.06
    flip = torch.rand(b, generator=gen) < 0.5 if facing_col is not None else torch.zeros(b, dtype=torch.bool)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = scale * torch.where(flip, -1.0, 1.0)
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if facing_col is not None and flip.any():
        targets = targets.clone()
        targets[flip, facing_col] = 1 - targets[flip, facing_col]
    return out, targets


@torch.no_grad()
def _accuracy(
    model: AttributeEvaluator, data: SplitData, idx: Tensor | None, species_index: dict[int, int]
) -> dict[str, float]:
    """Per-attribute (and, for known species, species) accuracy of ``model`` on ``data[idx]``."""
    sel = torch.arange(data.images.shape[0]) if idx is None else idx
    if len(sel) == 0:
        return {}
    preds = model.predict(data.images[sel], batch_size=256)
    out: dict[str, float] = {}
    for j, (name, pred) in enumerate(preds.predicted_indices().items()):
        out[name] = float((torch.from_numpy(pred) == data.targets[sel, j]).float().mean())
    out["mean_attribute"] = float(np.mean([out[n] for n in model.attribute_names]))
    species = [species_index.get(data.class_ids[int(i)], -1) for i in sel]
    if all(s >= 0 for s in species):
        out["species"] = float((preds.species_logits.argmax(1) == np.asarray(species)).mean())
    return out


def _file_digest(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        if p.is_file():
            h.update(p.name.encode())
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def train_evaluator(
    data_dir: str | Path,
    out_path: str | Path,
    *,
    epochs: int = 6,
    batch_size: int = 64,
    lr: float = 2e-3,
    image_size: int = 64,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    width: int = 16,
    feature_dim: int = 256,
    holdout_fraction: float = 0.1,
    bf16: bool = False,
    random_birds: int = 0,
) -> Path:
    """Train an :class:`AttributeEvaluator` on a ToyBirds dataset and save it to ``out_path``.

    Trains every head on the train split (train species) minus a stratified
    ``holdout_fraction`` per species; after training it reports per-attribute accuracy on
    that held-out part and on the test split (unseen species), prints them when
    ``progress`` and stores them in the file's metadata. Reproducible for a seed: weights
    are initialised inside ``torch.random.fork_rng`` (the global RNG is left untouched),
    batches and augmentation draw from explicit generators. Adam with a cosine learning-rate
    schedule; loss = sum of the heads' cross-entropies (the species head is trained on
    detached features, so only the attribute heads shape the shared features). Reported accuracies are those of the
    saved (fp16-rounded) weights.

    Args:
        data_dir: a ToyBirds root (``csagan data toybirds --out DIR``).
        out_path: file to write (parents are created).
        epochs, batch_size, lr: optimisation settings.
        image_size: evaluator input side (multiple of 16; the dataset is read at this size).
        seed: seed of initialisation, holdout, batch order and augmentation.
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ...
        progress: progress bars and printed accuracy tables.
        width, feature_dim: network size (:class:`AttributeEvaluator`).
        holdout_fraction: share of each train species' images held out for validation.
        bf16: autocast the forward pass to bfloat16 (faster on CPUs with AMX); losses in fp32.
        random_birds: also train the attribute heads on this many freshly rendered birds with
            independently random attributes (:func:`render_random_birds`), which breaks the
            species -> attributes shortcut and lifts accuracy on unseen species (the species head
            still sees train-split images only).

    Raises:
        FileNotFoundError: ``data_dir`` has no ``attributes.jsonl`` (not ToyBirds).
        ValueError: bad settings.
    """
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}")
    if not 0.0 <= holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction={holdout_fraction}: must be in [0, 1)")
    if seed < 0:
        raise ValueError(f"seed={seed}: must be >= 0")
    root = Path(data_dir)
    if not (root / "attributes.jsonl").is_file():
        raise FileNotFoundError(
            f"{root / 'attributes.jsonl'} not found: {root} is not a ToyBirds dataset; make one with "
            "`csagan data toybirds --out DIR` and pass that DIR"
        )
    dev = resolve_device(device)
    start = time.perf_counter()
    values = dict(ATTRIBUTE_VALUES)
    train_ds = TextImageDataset(root, "train", image_size=image_size, transform="eval", seed=seed)
    train = _load_split(train_ds, values, progress)
    test: SplitData | None = None
    if (root / "test" / "filenames.pickle").is_file():
        test = _load_split(TextImageDataset(root, "test", image_size=image_size, transform="eval"), values, progress)
    species_ids = sorted(set(train.class_ids))
    if len(species_ids) < 2:
        raise ValueError(f"the train split of {root} has {len(species_ids)} species; the species head needs >= 2")
    species_index = {c: i for i, c in enumerate(species_ids)}
    gen = torch.Generator().manual_seed(seed)
    train_idx, held_idx = _stratified_holdout(train.class_ids, holdout_fraction, gen)
    species_t = torch.tensor([species_index[c] for c in train.class_ids])
    # The training pool: the train split minus the holdout, plus optional random-attribute birds
    # (species label -1: ignored by the species head's loss).
    pool_images, pool_targets, pool_species = train.images[train_idx], train.targets[train_idx], species_t[train_idx]
    if random_birds:
        fmt = json.loads((root / "toybirds.json").read_text()).get("image_format", "png") if (
            root / "toybirds.json").is_file() else "png"  # sets made before the JPEG default are PNG
        extra = render_random_birds(random_birds, image_size, seed, values, progress, image_format=fmt)
        pool_images = torch.cat([pool_images, extra.images])
        pool_targets = torch.cat([pool_targets, extra.targets])
        pool_species = torch.cat([pool_species, torch.full((random_birds,), -1, dtype=torch.long)])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AttributeEvaluator(
            len(species_ids), image_size, width, feature_dim, attribute_values=values, species_ids=species_ids
        )
    model.to(dev)
    facing_col = list(values).index(_FACING) if _FACING in values else None
    steps_per_epoch = math.ceil(len(pool_images) / batch_size)
    total_steps = epochs * steps_per_epoch
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total_steps) / total_steps))
    )
    names = list(values)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(pool_images), generator=gen)
        running = 0.0
        bar = tqdm(range(steps_per_epoch), disable=not progress, desc=f"evaluator epoch {epoch + 1}/{epochs}")
        for step in bar:
            idx = order[step * batch_size : (step + 1) * batch_size]
            x = pool_images[idx].float().div(127.5).sub(1.0)
            x, tgt = _augment(x, facing_col, pool_targets[idx], gen)
            x, tgt, sp = x.to(dev), tgt.to(dev), pool_species[idx].to(dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                out = model(x)
            # Random birds carry species -1 (ignored); a batch of only those adds a zero species loss.
            has_species = bool((sp >= 0).any())
            loss = F.cross_entropy(out.species.float(), sp, ignore_index=-1) if has_species else 0.0 * out.species.sum()
            for j, name in enumerate(names):
                loss = loss + F.cross_entropy(out.attributes[name].float(), tgt[:, j])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running = 0.9 * running + 0.1 * float(loss.detach()) if step else float(loss.detach())
            bar.set_postfix(loss=f"{running:.3f}")
        logger.info("evaluator epoch %d/%d: loss %.4f", epoch + 1, epochs, running)
    # Evaluate the weights as they will be saved (fp16-rounded).
    with torch.no_grad():
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.copy_(p.half().float())
    model.eval()
    heldout = _accuracy(model, train, held_idx, species_index)
    test_acc = _accuracy(model, test, None, species_index) if test is not None else {}
    seconds = time.perf_counter() - start
    table = _accuracy_table(heldout, test_acc)
    if progress:
        print(table)
        print(f"evaluator trained in {seconds:.0f} s on {dev}")
    else:
        logger.info("evaluator accuracy (trained in %.0f s on %s):\n%s", seconds, dev, table)
    model.meta = {
        "data_dir": str(root),
        "data_sha256": _file_digest([root / "attributes.jsonl", root / "train" / "filenames.pickle"]),
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "bf16": bf16,
        "holdout_fraction": holdout_fraction,
        "n_train_images": len(train_idx),
        "n_random_birds": random_birds,
        "n_heldout_images": len(held_idx),
        "n_test_images": 0 if test is None else int(test.images.shape[0]),
        "training_data": "train split (train species) minus a stratified holdout"
        + (f", plus {random_birds} rendered birds with independently random attributes" if random_birds else "")
        + "; species head = train species",
        "heldout_accuracy": heldout,
        "test_split_accuracy": test_acc,
        "train_seconds": round(seconds, 1),
        "torch_version": torch.__version__,
    }
    return save_evaluator(model, out_path)


def _accuracy_table(heldout: Mapping[str, float], test: Mapping[str, float]) -> str:
    keys = list(dict.fromkeys([*heldout, *test]))
    lines = [f"{'attribute':<15}{'held-out':>10}{'test split':>12}"]
    for k in keys:
        a = f"{heldout[k]:.4f}" if k in heldout else "-"
        b = f"{test[k]:.4f}" if k in test else "-"
        lines.append(f"{k:<15}{a:>10}{b:>12}")
    return "\n".join(lines)
