"""``csagan export-run``, ``study run|table|figures`` and ``import dfgan``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from csagan.cli.common import SubParsers


def _cmd_export_run(args: argparse.Namespace) -> int:
    from csagan.train.run import export_run

    out = export_run(args.run, args.out, half=not args.fp32)
    print(f"run exported to {out} ({'fp32' if args.fp32 else 'fp16'} weights)")
    return 0


def _cmd_study_run(args: argparse.Namespace) -> int:
    import torch

    from csagan.study import STUDY_PRESETS, StudyPaths, mask_source_dir, pending, retrained_for_masks, run, study_config
    from csagan.study.parallel import LOG_DIR, run_parallel
    from csagan.train.config import list_train_presets

    if args.preset not in STUDY_PRESETS:
        hint = (f" {args.preset!r} is a train preset: give it with --train-preset."
                if args.preset in list_train_presets() else "")  # fmt: skip
        raise SystemExit(f"csagan study run: --preset names a study preset ({', '.join(STUDY_PRESETS)});{hint}")
    sets = list(args.set or ())
    for flag, key in (("variants", "variants"), ("seeds", "seeds"), ("train_preset", "train_preset"),
                      ("steps", "max_steps"), ("batch_size", "batch_size"), ("eval_images", "eval_images")):
        value = getattr(args, flag)
        if value is not None:
            sets.append(f"{key}={value}")
    config = study_config(args.preset, sets)
    if args.train_set:
        config = config.replace(overrides=(*config.overrides, *args.train_set))
    paths = StudyPaths(data_dir=str(args.data), damsm_dir=str(args.damsm), runs_dir=str(args.runs),
                       results_dir=str(args.results), evaluator=None if args.evaluator is None else str(args.evaluator))
    if args.jobs < 1 or (args.threads is not None and args.threads < 1):
        raise SystemExit("csagan study run: --jobs and --threads must be >= 1.")
    for seed in retrained_for_masks(config, paths):
        print(f"csagan seed {seed} is trained again although its result exists: ssagan-fixed-mask seed {seed} copies "
              f"its masks from {mask_source_dir(paths, seed)}, which holds no finished run; its result file "
              "is rewritten.", flush=True)
    if args.jobs == 1:
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        files = run(config, paths, progress=not args.no_progress)
    else:
        todo = pending(config, paths)
        print(f"{len(todo)} run(s) to do, {args.jobs} at a time; logs in {Path(args.runs) / LOG_DIR}", flush=True)
        files = run_parallel(config, paths, args.jobs, args.threads)
    print(f"{len(files)} result file(s) in {args.results}")
    return 0


def _cmd_study_worker(args: argparse.Namespace) -> int:
    from csagan.study.parallel import run_worker

    print(f"result: {run_worker(args.spec)}")
    return 0


def _print_verdicts(verdicts: list[Any], indent: str = "") -> None:
    for v in verdicts:
        if v.verdict != "missing":
            print(f"{indent}{v.table}: {v.claim} ({v.better} vs {v.worse}), {v.metric}: {v.verdict} "
                  f"(difference {v.difference:+.4f}, seed noise {v.noise:.4f})")  # fmt: skip


def _cmd_study_table(args: argparse.Namespace) -> int:
    from csagan.study import budgets, judge_claims, load_results, markdown_table, results_at, summarize

    for n, folder in enumerate(args.results):
        results = load_results(folder)
        seen = sorted({int(r["images_seen"]) for r in results if "images_seen" in r})
        if n:
            print()
        print(f"## {folder}: {len(results)} run(s), {', '.join(map(str, seen))} images each")
        print()
        summary = summarize(results)
        print(markdown_table(summary))
        print()
        _print_verdicts(judge_claims(summary))
        if args.points:
            for images in budgets(results)[:-1]:
                print(f"\nat {images} images:")
                _print_verdicts(judge_claims(summarize(results_at(results, images))), indent="  ")
    return 0


def _cmd_study_figures(args: argparse.Namespace) -> int:
    from csagan.study import STUDY_VARIANTS, result_path, run_dir
    from csagan.study.figures import load_study_figures, render_study_figures

    variants = None
    if args.results is not None:  # only runs that finished (a run still training has a generator.pt too)
        variants = tuple(v for v in STUDY_VARIANTS if result_path(args.results, v, args.seed).is_file())
        if not variants:
            raise FileNotFoundError(f"no result file for seed {args.seed} in {args.results}; run `csagan study run`.")
        runs_here = [v for v in variants if (run_dir(args.runs, v, args.seed) / "generator.pt").is_file()]
        if not runs_here:  # e.g. a clone: it holds the result files and the figures, not the run folders
            try:
                drawn = set(load_study_figures(args.out).samples)
            except FileNotFoundError:
                drawn = set()
            how = (f"to draw them again, train seed {args.seed} into new folders (`csagan study run ... --seeds "
                   f"{args.seed} --runs <new> --results <new>`) and point `csagan study figures` at those")
            if not set(variants) <= drawn:
                raise FileNotFoundError(
                    f"the result files of seed {args.seed} are in {args.results}, but their run folders are not under "
                    f"{args.runs} (looked for <variant>/seed{args.seed}/generator.pt), and {args.out} has no figures "
                    f"of {sorted(set(variants) - drawn)}; {how}."
                )
            print(f"figures: the run folders of seed {args.seed} are not under {args.runs}, so the figures in "
                  f"{args.out} ({len(drawn)} variant(s)) are kept as they are; {how}.")
            return 0
    render_study_figures(args.runs, args.out, args.data, seed=args.seed, variants=variants)
    print(f"figures of {len(load_study_figures(args.out).samples)} variant(s) in {args.out}")
    return 0


def add_study_commands(sub: SubParsers) -> None:
    ex = sub.add_parser("export-run", help="copy a run's generator, DAMSM and logs (fp16) for sampling and shipping")
    ex.add_argument("--run", required=True, type=Path, help="run folder written by `csagan train`")
    ex.add_argument("--out", required=True, type=Path, help="output folder")
    ex.add_argument("--fp32", action="store_true", help="keep fp32 weights (default: fp16, half the size)")
    ex.set_defaults(func=_cmd_export_run)

    st = sub.add_parser("study", help="the reproduction study: every variant, several seeds, one protocol")
    ssub = st.add_subparsers(dest="study_command", required=True, metavar="{run,table,figures}")
    run = ssub.add_parser("run", help="train and evaluate every (variant, seed); resumable")
    run.add_argument("--data", required=True, type=Path, help="ToyBirds root")
    run.add_argument("--damsm", required=True, type=Path, help="pretrained DAMSM folder")
    run.add_argument("--runs", required=True, type=Path, help="folder of the run folders")
    run.add_argument("--results", required=True, type=Path, help="folder of the result JSON files")
    run.add_argument("--preset", default="early",
                     help="study preset: early (600 x 16 images, 64 px), trained (32 px, scored at five budgets), "
                          "smoke; see `csagan config show-study`")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a study setting, e.g. seeds=0,1,2 or max_steps=3000 (repeatable)")
    run.add_argument("--train-set", action="append", metavar="KEY=VALUE",
                     help="extra train/model override for every run, e.g. nf=32 (repeatable)")
    run.add_argument("--variants", default=None, help="comma-separated (default: the preset's, all eight)")
    run.add_argument("--seeds", default=None, help="comma-separated seeds (default: the preset's)")
    run.add_argument("--train-preset", default=None, help="train preset of every run (default: the preset's)")
    run.add_argument("--steps", type=int, default=None, help="steps per run (default: the preset's)")
    run.add_argument("--batch-size", type=int, default=None, help="batch size (default: the preset's)")
    run.add_argument("--eval-images", type=int, default=None, help="generated images scored per point")
    run.add_argument("--evaluator", type=Path, default=None, help="ToyBirds evaluator (default: the shipped one)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--jobs", type=int, default=1,
                     help="runs at once, each its own process (default 1); on a 2-core CPU --jobs 2 finishes "
                          "the study sooner (benchmarks/README.md); pause all with pkill -STOP -f 'csagan study'")
    run.add_argument("--threads", type=int, default=None,
                     help="torch threads per run (default: torch's for --jobs 1, else the cores divided by --jobs)")
    run.set_defaults(func=_cmd_study_run)
    wk = ssub.add_parser("worker")  # one run of `study run --jobs N`, started by it (no help: not listed)
    wk.add_argument("--spec", required=True, help=argparse.SUPPRESS)
    wk.set_defaults(func=_cmd_study_worker)
    tab = ssub.add_parser("table", help="mean ± std per variant and the paper's claims, judged")
    tab.add_argument("--results", required=True, type=Path, action="append",
                     help="folder of the result JSON files (repeat for several studies, e.g. two budgets)")
    tab.add_argument("--points", action="store_true", help="also judge the claims at every earlier scored budget")
    tab.set_defaults(func=_cmd_study_table)
    fig = ssub.add_parser("figures", help="the same captions and noise drawn by every variant (PNG files for the book)")
    fig.add_argument("--runs", required=True, type=Path, help="the study's folder of run folders")
    fig.add_argument("--out", required=True, type=Path, help="output folder (e.g. book/results/figures)")
    fig.add_argument("--data", required=True, type=Path, help="ToyBirds root")
    fig.add_argument("--seed", type=int, default=0, help="which training seed's runs (default 0)")
    fig.add_argument("--results", type=Path, default=None,
                     help="draw only the runs with a result file here (finished runs; default: every run folder)")
    fig.set_defaults(func=_cmd_study_figures)




def _cmd_import_dfgan(args: argparse.Namespace) -> int:
    from csagan.dfgan_import import import_dfgan

    report = import_dfgan(args.checkpoint, args.out, damsm_dir=args.damsm, preset=args.preset,
                          overrides=list(args.set or []))  # fmt: skip
    s = report.sizes
    epoch = "" if report.dfgan_epoch is None else f" (DF-GAN epoch {report.dfgan_epoch})"
    print(f"DF-GAN checkpoint {args.checkpoint}{epoch} imported into {report.run_dir}: dfgan at {s.image_size} px, "
          f"nf={s.nf}, d_nf={s.d_nf}, z_dim={s.z_dim}, text_dim={s.text_dim}")
    if report.optimizers_imported:
        print("optimizer states: imported")
    else:
        print(f"optimizer states: fresh Adam states ({report.optimizer_note})")
    if report.dropped_keys:
        print(f"dropped {len(report.dropped_keys)} DF-GAN tensor(s) its forward never uses (D_Block.conv_s where "
              "the channels do not change)")
    for note in report.notes:
        print(f"note: {note}")
    print(f"resume training with: {report.resume_command}")
    return 0


def add_import_commands(sub: SubParsers) -> None:
    imp = sub.add_parser("import", help="convert another code base's checkpoint into a csagan run folder")
    isub = imp.add_subparsers(dest="import_command", required=True, metavar="{dfgan}")
    df = isub.add_parser(
        "dfgan",
        help="DF-GAN's state_epoch_XXX.pth (tobran/DF-GAN) as a run of the dfgan configuration",
        description="Convert DF-GAN's checkpoint {'model': {'netG', 'netD', 'netC'}, 'optimizers', 'epoch'} into a "
        "csagan run folder of the dfgan configuration that `csagan sample`, `csagan evaluate` and "
        "`csagan train --resume` accept. Image size and widths are read from the weights; the optimizer states "
        "are imported when compatible, else fresh; import.json records the source and the resume command.",
    )
    df.add_argument("checkpoint", type=Path, help="DF-GAN's state_epoch_XXX.pth")
    df.add_argument("--out", required=True, type=Path, help="the run folder to create (new or empty)")
    df.add_argument("--damsm", required=True, type=Path,
                    help="the DAMSM folder DF-GAN was trained with (AttnGAN's text_encoder*.pth, image_encoder*.pth "
                         "and vocab.json, or `csagan pretrain-damsm`'s output)")
    df.add_argument("--preset", default=None, help="train preset for the run's train settings (default: toybirds-cpu)")
    df.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a train field as `csagan train --set` does (repeatable)")
    df.set_defaults(func=_cmd_import_dfgan)
