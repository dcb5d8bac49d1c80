"""The ``csagan`` command line.

Every sub-command is a thin wrapper around a library function, so that what the command
line does and what the book's notebooks do are the same code. Errors that come from bad
input (missing files, corrupt data, unknown names) are printed as one clear message with
exit status 2 instead of a traceback; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from csagan.cli.data import add_data_commands
from csagan.cli.evaluation import EVALUATE_METRICS, add_evaluation_commands
from csagan.cli.study import add_import_commands, add_study_commands
from csagan.cli.training import add_training_commands

__all__ = ["EVALUATE_METRICS", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Return the ``csagan`` argument parser (exposed for tests and documentation)."""
    from csagan import __version__

    parser = argparse.ArgumentParser(
        prog="csagan",
        description="CSA-GAN: data, training, sampling and evaluation (see the book for the maths).",
    )
    parser.add_argument("--version", action="version", version=f"csagan {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_data_commands(sub)
    add_training_commands(sub)
    add_evaluation_commands(sub)
    add_study_commands(sub)
    add_import_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``csagan`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (FileNotFoundError, ValueError, RuntimeError, OSError) as exc:
        if args.debug:
            raise
        print(f"csagan: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("csagan: interrupted", file=sys.stderr)
        return 130


