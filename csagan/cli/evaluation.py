"""``csagan evaluator train``, ``evaluate`` and ``fid-stats``."""

from __future__ import annotations

import argparse
from pathlib import Path

from csagan.cli.common import SubParsers, truncation_arg


def _cmd_evaluator_train(args: argparse.Namespace) -> int:
    from csagan.evaluator import train_evaluator

    path = train_evaluator(
        args.data, args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        image_size=args.image_size, seed=args.seed, device=args.device, progress=not args.quiet,
        random_birds=args.random_birds,
    )
    print(f"ToyBirds attribute evaluator written to {path}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from csagan.evaluate import EvalPaths, eval_config, run

    sets = list(args.set or ())
    for key in ("metrics", "passes", "max_images", "seed", "is_splits", "rprec_candidates", "rprec_rounds",
                "sanity_images"):  # fmt: skip
        if getattr(args, key) is not None:
            sets.append(f"{key}={getattr(args, key)}")
    if args.truncation is not None:
        sets.append(f"truncation={truncation_arg(args.truncation)}")
    sets += [f"batch_size={args.batch_size}", f"device={args.device}", f"protocol={args.protocol}"]
    config = eval_config(args.preset, sets)
    paths = EvalPaths(args.run, args.data, fid_weights=args.fid_weights, fid_stats=args.fid_stats,
                      evaluator=args.evaluator)  # fmt: skip
    result = run(config, paths, progress=not args.quiet)
    path = result.save(args.out)
    print(result.summary())
    print(f"report written to {path}")
    return 0


def _cmd_fid_stats(args: argparse.Namespace) -> int:
    from csagan.devices import resolve_device
    from csagan.metrics.inception_fid import FIDInceptionV3
    from csagan.metrics.reference import folder_statistics, list_images, split_statistics
    from csagan.metrics.stats import save_stats

    if args.folder is not None:
        list_images(args.folder)  # fail on a missing or empty folder before loading the network
    elif not Path(args.data).is_dir():
        raise FileNotFoundError(f"dataset root not found: {args.data}")
    device = resolve_device(args.device)
    model = FIDInceptionV3("auto" if args.fid_weights is None else args.fid_weights, protocol=args.protocol)
    common = {"batch_size": args.batch_size, "device": device, "progress": not args.quiet}
    if args.data is not None:
        size = 256 if args.image_size is None else args.image_size
        stats = split_statistics(
            args.data, model, split=args.split, image_size=size, passes=args.passes, max_images=args.max_images,
            seed=args.seed, **common,
        )  # fmt: skip
        what = f"{args.split} split of {args.data} at {size} px, {args.passes} pass(es)"
    else:
        stats = folder_statistics(args.folder, model, image_size=args.image_size, **common)
        what = f"images in {args.folder}"
    path = save_stats(args.out, stats)
    print(f"reference statistics of {stats.num_images} images ({what}) written to {path}")
    print(f"Inception: {model.weights_info()['label']}")
    return 0


def add_evaluation_commands(sub: SubParsers) -> None:
    ev = sub.add_parser("evaluator", help="the ToyBirds attribute classifier used for exact alignment metrics")
    esub = ev.add_subparsers(dest="evaluator_command", required=True, metavar="{train}")
    tr = esub.add_parser("train", help="train the attribute classifier on a ToyBirds dataset")
    tr.add_argument("--data", required=True, type=Path, help="ToyBirds root (with attributes.jsonl)")
    tr.add_argument("--out", required=True, type=Path, help="output weights file (.pt)")
    tr.add_argument("--epochs", type=int, default=6, help="epochs (default 6)")
    tr.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    tr.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 2e-3)")
    tr.add_argument("--image-size", type=int, default=64, help="input size (default 64)")
    tr.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    tr.add_argument("--random-birds", type=int, default=0,
                    help="also train on N rendered birds with random attributes (breaks species shortcuts)")
    tr.add_argument("--device", default="auto", help="auto, cpu, cuda (default auto)")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=_cmd_evaluator_train)

    _add_evaluate(sub)
    _add_fid_stats(sub)


def _add_inception_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fid-weights", type=Path, default=None,
                   help="Inception weights file (default: $CSAGAN_FID_WEIGHTS, then the torch hub cache; "
                        "the standard file is pt_inception-2015-12-05-6726825d.pth from pytorch-fid)")
    p.add_argument("--protocol", choices=["standard", "dfgan"], default="standard",
                   help="standard (pytorch-fid's network, default) or dfgan (DF-GAN's non-standard "
                        "torchvision ImageNet network; not comparable with pytorch-fid)")
    p.add_argument("--batch-size", type=int, default=50, help="images per forward pass (default 50)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 (default auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


EVALUATE_METRICS = ("fid", "is", "rprec", "align", "dfid", "dis")
"""``csagan evaluate --metrics`` names (``csagan.evaluate.METRICS``, repeated so that building the
parser does not import torch; a test keeps the two equal)."""


def _add_evaluate(sub: SubParsers) -> None:
    names = ",".join(EVALUATE_METRICS)
    ev = sub.add_parser(
        "evaluate",
        help="generate from the test captions and compute FID, IS, R-precision and ToyBirds alignment",
        description="Generate one image per test image and pass (a random caption of it each time, DF-GAN's "
        f"truncated noise), compute the requested metrics and write a JSON report. Metrics: {names}.",
    )
    ev.add_argument("--run", required=True, type=Path, help="run folder written by `csagan train`")
    ev.add_argument("--data", required=True, type=Path, help="the dataset root the run was trained on")
    ev.add_argument("--preset", default=None,
                    help="evaluation preset: paper (10 passes, FID and IS), study (the reproduction study's), quick; "
                         "default: FID and IS, one pass (see `csagan config show-eval`). The options below override it")
    ev.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting (repeatable)")
    ev.add_argument("--metrics", default=None, help=f"comma-separated, from {names} (default fid,is)")
    ev.add_argument("--passes", type=int, default=None, help="passes over the test captions (default 1; the paper ~10)")
    ev.add_argument("--max-images", type=int, default=None,
                    help="score a seeded subset of this many generated (and real) images, for CPU runs")
    ev.add_argument("--seed", type=int, default=None, help="seed of captions, noise and metric draws (default 0)")
    ev.add_argument("--truncation", type=float, default=None,
                    help="truncated-normal noise scale (default 0.88, DF-GAN; 0 = plain normal)")
    ev.add_argument("--fid-stats", type=Path, default=None,
                    help="reference statistics .npz from `csagan fid-stats` (default: computed from the test images)")
    ev.add_argument("--is-splits", type=int, default=None, help="splits of IS and domain IS (default 10)")
    ev.add_argument("--rprec-candidates", type=int, default=None, help="captions ranked per image (default 100)")
    ev.add_argument("--rprec-rounds", type=int, default=None, help="R-precision repetitions (default 10)")
    ev.add_argument("--evaluator", type=Path, default=None,
                    help="ToyBirds evaluator from `csagan evaluator train` "
                         "(default csagan/assets/evaluator_toybirds.pt)")
    ev.add_argument("--sanity-images", type=int, default=None,
                    help="real test images for the alignment's sanity bounds (default 1000)")
    ev.add_argument("--out", required=True, type=Path, help="the JSON report to write")
    _add_inception_options(ev)
    ev.set_defaults(func=_cmd_evaluate)


def _add_fid_stats(sub: SubParsers) -> None:
    fs = sub.add_parser(
        "fid-stats",
        help="precompute FID reference statistics (pytorch-fid .npz) of a dataset split or an image folder",
    )
    src = fs.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, default=None, help="dataset root in the AttnGAN layout")
    src.add_argument("--folder", type=Path, default=None, help="a plain folder of image files")
    fs.add_argument("--split", choices=["train", "test"], default="test", help="split of --data (default test)")
    fs.add_argument("--passes", type=int, default=1,
                    help="passes over the split; > 1 takes random crops and flips (DF-GAN's augmented set)")
    fs.add_argument("--image-size", type=int, default=None,
                    help="read images at this size; use the generator's output size (default: 256 for --data, "
                         "each file's own size for --folder)")
    fs.add_argument("--max-images", type=int, default=None, help="a seeded subset of this many images per pass")
    fs.add_argument("--seed", type=int, default=0, help="seed of the subset and augmentation (default 0)")
    fs.add_argument("--out", required=True, type=Path, help="output .npz (mu, sigma)")
    _add_inception_options(fs)
    fs.set_defaults(func=_cmd_fid_stats)
