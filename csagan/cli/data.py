"""``csagan data ...``: render ToyBirds, prepare a data set, inspect one."""

from __future__ import annotations

import argparse
from pathlib import Path

from csagan.cli.common import SubParsers


def _cmd_data_toybirds(args: argparse.Namespace) -> int:
    from csagan.data.toybirds import make_toybirds

    root = make_toybirds(
        args.out,
        size=args.size,
        seed=args.seed,
        n_images=args.n_images,
        n_species=args.n_species,
        workers=args.workers,
        progress=not args.quiet,
        overwrite=args.overwrite,
        image_format=args.image_format,
    )
    print(f"ToyBirds written to {root}")
    return 0


def _cmd_data_prepare(args: argparse.Namespace) -> int:
    from csagan.data import prepare

    link = not args.copy
    if args.source == "cub":
        root = prepare.prepare_cub(args.cub_dir, args.text_dir, args.out, link=link)
    elif args.source == "coco":
        root = prepare.prepare_coco(
            args.images_dir, args.captions_train, args.captions_val, args.out, link=link
        )
    else:
        root = prepare.prepare_folder(
            args.folder, args.out, test_fraction=args.test_fraction, seed=args.seed, link=link
        )
    print(f"AttnGAN-layout dataset written to {root}")
    return 0


def _cmd_data_inspect(args: argparse.Namespace) -> int:
    from csagan.data.inspect import inspect_dataset

    report = inspect_dataset(args.root, split=args.split, progress=not args.no_progress)
    print(report.format())
    return 0 if report.ok else 1


def add_data_commands(sub: SubParsers) -> None:
    data = sub.add_parser("data", help="make, prepare and inspect datasets")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="{toybirds,prepare,inspect}")

    tb = dsub.add_parser(
        "toybirds",
        help="render the built-in ToyBirds dataset in AttnGAN's birds layout",
        description="Render ToyBirds (procedural birds with CUB-like attributes and captions) "
        "into DIR in the AttnGAN 'birds' layout.",
    )
    tb.add_argument("--out", required=True, type=Path, help="output folder (the dataset root)")
    tb.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    tb.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    tb.add_argument("--n-images", type=int, default=None, help="total images (default: CUB's 11,788)")
    tb.add_argument("--n-species", type=int, default=200, help="species (default: CUB's 200)")
    tb.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    tb.add_argument("--quiet", action="store_true", help="no progress bar")
    tb.add_argument("--overwrite", action="store_true", help="replace an earlier ToyBirds set in --out")
    tb.add_argument("--image-format", choices=("jpg", "png"), default="jpg",
                    help="jpg (default, quality 95, 4:4:4: the images/<key>.jpg upstream loaders open) or png")
    tb.set_defaults(func=_cmd_data_toybirds)

    pr = dsub.add_parser(
        "prepare",
        help="build the AttnGAN layout from raw CUB, COCO or a folder of image+caption pairs",
    )
    psub = pr.add_subparsers(dest="source", required=True, metavar="{cub,coco,folder}")
    cub = psub.add_parser("cub", help="CUB-200-2011 plus the 10-captions-per-image text folder")
    cub.add_argument("--cub-dir", required=True, type=Path, help="the extracted CUB_200_2011 folder")
    cub.add_argument("--text-dir", required=True, type=Path, help="text_c10 folder (<class>/<img>.txt)")
    coco = psub.add_parser("coco", help="COCO 2014 images and the official caption JSON files")
    coco.add_argument("--images-dir", required=True, type=Path, help="folder holding train2014/ and val2014/")
    coco.add_argument("--captions-train", required=True, type=Path, help="captions_train2014.json")
    coco.add_argument("--captions-val", required=True, type=Path, help="captions_val2014.json")
    folder = psub.add_parser("folder", help="your own images, each with a same-name .txt of captions")
    folder.add_argument("--folder", required=True, type=Path, help="folder of image + .txt pairs")
    folder.add_argument("--test-fraction", type=float, default=0.2, help="share held out (default 0.2)")
    folder.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    for p in (cub, coco, folder):
        p.add_argument("--out", required=True, type=Path, help="output dataset root")
        p.add_argument("--copy", action="store_true", help="copy images instead of symlinking them")
        p.set_defaults(func=_cmd_data_prepare)

    ins = dsub.add_parser("inspect", help="count images, captions and vocabulary; list broken files")
    ins.add_argument("--root", required=True, type=Path, help="dataset root in the AttnGAN layout")
    ins.add_argument("--split", choices=["train", "test"], default=None, help="one split (default: both)")
    ins.add_argument("--no-progress", action="store_true", help="no progress bar")
    ins.set_defaults(func=_cmd_data_inspect)
