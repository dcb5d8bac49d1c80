"""The student edition of the book: chapters without solutions, ready to hand out (``make student``).

``python tools/student_edition.py [--out _build/student]`` reads every ``notebooks/*.ipynb`` and writes

* ``OUT/notebooks/*.ipynb``: copies of the chapters with every exercise solution removed;
* ``OUT/book-src/``: a Jupyter Book source tree (``_config.yml`` with sphinx-exercise's
  ``hide_solutions: true`` and the title marked "student edition", ``_toc.yml``, a copy of ``book/``
  and the student notebooks) that ``make student`` builds into ``OUT/html``. Because the HTML is
  built from the student notebooks, it lacks exactly what they lack; ``hide_solutions`` hides
  anything a future solution form might add that this tool does not know, and
  ``--check-html OUT/html`` (run by ``make student``) fails if a built page still holds a solution.

What counts as a solution (every form sphinx-exercise 1.x accepts, in MyST Markdown cells):

1. a ``solution`` directive in any fence, `````{solution} label`````, ``````{solution}`````
   (4+ backticks, so that it may hold code blocks), ``~~~{solution}`` or ``:::{solution}``
   (``colon_fence``), with any options (``:class: dropdown``, ``:label:``) and body; also when nested
   inside another directive (an admonition, a tab);
2. a gated solution: everything from a ``{solution-start}`` directive to the next ``{solution-end}``
   directive, which may span several cells: the Markdown and code cells in between are removed, text
   before the start and after the end in the same cell is kept;
3. a cell tagged ``solution`` (typically a code cell holding a worked answer).

Besides, a code cell tagged ``solution-output`` keeps its code but loses its outputs (for a cell whose
printed result would give an answer away), and a cell tagged ``checker`` is always kept verbatim, even
inside a gated solution: checker cells assert a student's function against the package, so that
students know when they are right.

The rest of every notebook is left byte-for-byte as it was (cell sources, metadata, outputs); when a
solution block is cut out of a cell, the blank lines that separated it from its neighbours go with it,
and a cell left empty is dropped. The tool never writes into the source ``notebooks/`` folder. Errors
(an unclosed fence, a ``solution-end`` without start, a cell tagged both ``solution`` and ``checker``,
an exercise that would be lost) name the notebook, the cell and the fix, in one line.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]

SOLUTION_TAG = "solution"
SOLUTION_OUTPUT_TAG = "solution-output"
CHECKER_TAG = "checker"

# A fence opener (CommonMark: at most 3 spaces of indentation) and, for a MyST directive, its name.
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
_DIRECTIVE = re.compile(r"^\s*\{(?P<name>[A-Za-z0-9_:+-]+)\}(?P<arg>.*)$")
# Directives whose body is not MyST Markdown (nothing inside them can be a solution directive).
_LITERAL_DIRECTIVES = frozenset(
    {"code", "code-block", "sourcecode", "code-cell", "math", "raw", "eval-rst", "eval-rest", "literalinclude"}
)
_ATTACHMENT = re.compile(r"attachment:([^\s)\"'>]+)")


class StudentEditionError(Exception):
    """A notebook the tool cannot turn into a student edition; the message names the file and the fix."""


@dataclass
class Stats:
    """What was removed from one notebook."""

    solutions: int = 0  # solution directives and gated solution regions
    cells_removed: int = 0  # cells dropped (tagged, inside a gated region, or left empty)
    outputs_cleared: int = 0  # code cells tagged solution-output
    checkers_kept: int = 0  # cells tagged checker
    exercises: int = 0  # exercise directives (unchanged)
    removed_text: list[str] = field(default_factory=list)  # every removed solution block, for reports


def _lines(text: str) -> list[str]:
    """Split ``text`` into lines that keep their ``\\n`` (only ``\\n`` separates lines, as in nbformat)."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _tags(cell: dict[str, Any]) -> list[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return [str(t) for t in tags] if isinstance(tags, list) else []


def _fence_of(line: str) -> tuple[str, str | None, str] | None:
    """For a fence opener, its fence (e.g. ``````` or ``:::``), directive name (None for a code block) and
    argument; None for any other line. ``:::`` without a ``{name}`` is not a fence (colon_fence needs one)."""
    m = _FENCE.match(line.rstrip("\n"))
    if m is None:
        return None
    fence, info = m.group("fence"), m.group("info")
    if fence[0] == "`" and "`" in info:
        return None  # CommonMark: a backtick fence's info string has no backticks (this is inline code)
    d = _DIRECTIVE.match(info)
    if d is None:
        return None if fence[0] == ":" else (fence, None, info.strip())
    return fence, d.group("name"), d.group("arg").strip()


def _find_close(lines: Sequence[str], start: int, fence: str) -> int | None:
    """Index of the line closing the fence opened at ``start`` (same character, at least as long)."""
    closing = re.compile(r"^ {0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$")
    for j in range(start + 1, len(lines)):
        if closing.match(lines[j].rstrip("\n")):
            return j
    return None


def _is_blank(line: str) -> bool:
    return line.strip() == ""


@dataclass
class _Where:
    """Where the scanner is, for error messages."""

    notebook: str
    cell: int

    def __str__(self) -> str:
        return f"{self.notebook} cell {self.cell}"


def _strip_markdown(
    text: str, gated: int | None, where: _Where, stats: Stats, nested: bool = False
) -> tuple[str, int | None, bool]:
    """Remove the solutions from one Markdown text.

    ``gated`` is the cell index of an open ``solution-start`` (None outside a gated solution); it is
    returned updated, with the new text and whether anything was removed.
    """
    lines = _lines(text)
    out: list[str] = []
    removed = False
    tail_removed = False  # whether the text's last line was removed
    i = 0

    def drop(first: int, last: int) -> int:
        """Drop lines[first..last] and, when the block stood in its own paragraph, the blank lines after it."""
        nonlocal removed, tail_removed
        removed = True
        stats.removed_text.append("".join(lines[first : last + 1]))
        k = last + 1
        if not out or _is_blank(out[-1]):
            while k < len(lines) and _is_blank(lines[k]):
                k += 1
        tail_removed = k == len(lines)
        return k

    while i < len(lines):
        head = _fence_of(lines[i])
        if gated is not None:  # inside a gated solution: drop everything up to solution-end
            if head is None:
                i = drop(i, i)
                continue
            fence, name, _ = head
            close = _find_close(lines, i, fence)
            if close is None:
                raise StudentEditionError(
                    f"{where}: the fence {fence} opened on line {i + 1} is never closed; close it with {fence}"
                )
            if name == "solution-start":
                raise StudentEditionError(
                    f"{where}: a solution-start inside the solution started in cell {gated}; "
                    "end the first one with a solution-end"
                )
            if name == "solution-end":
                gated = None
            i = drop(i, close)
            continue
        if head is None:
            out.append(lines[i])
            i += 1
            continue
        fence, name, _ = head
        close = _find_close(lines, i, fence)
        if close is None:
            raise StudentEditionError(
                f"{where}: the fence {fence}{'{' + name + '}' if name else ''} opened on line {i + 1} is never "
                f"closed; close it with a line {fence}"
            )
        if name == "solution":
            stats.solutions += 1
            i = drop(i, close)
        elif name == "solution-start":
            if nested:
                raise StudentEditionError(
                    f"{where}: a solution-start inside another directive (line {i + 1}); put gated solutions "
                    "at the top level of the cells"
                )
            stats.solutions += 1
            gated = where.cell
            i = drop(i, close)
        elif name == "solution-end":
            raise StudentEditionError(
                f"{where}: a solution-end (line {i + 1}) without a solution-start before it; add one or remove it"
            )
        elif name is not None and name not in _LITERAL_DIRECTIVES:
            if name in ("exercise", "exercise-start"):
                stats.exercises += 1
            body, inner_gated, inner_removed = _strip_markdown(
                "".join(lines[i + 1 : close]), None, where, stats, nested=True
            )
            if inner_gated is not None:
                raise StudentEditionError(f"{where}: a solution-start inside {{{name}}} is never ended inside it")
            out.append(lines[i])
            out.extend(_lines(body) if inner_removed else lines[i + 1 : close])
            out.append(lines[close])
            removed = removed or inner_removed
            i = close + 1
            continue
        else:
            out.extend(lines[i : close + 1])
            i = close + 1
        continue
    if tail_removed:
        # a removal at the very end: no trailing blank lines, and no final newline if the source had none
        while out and _is_blank(out[-1]):
            out.pop()
        if out and not lines[-1].endswith("\n"):
            out[-1] = out[-1].rstrip("\n")
    return "".join(out), gated, removed


def _as_source(text: str) -> list[str]:
    """A cell source in nbformat's on-disk form: a list of lines that keep their newlines."""
    return _lines(text)


def student_notebook(nb: dict[str, Any], name: str = "notebook") -> tuple[dict[str, Any], Stats]:
    """The student copy of a notebook (parsed JSON) and what was removed; ``nb`` itself is not changed."""
    stats = Stats()
    cells_out: list[dict[str, Any]] = []
    gated: int | None = None
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise StudentEditionError(f"{name}: not a Jupyter notebook (no cells list); pass an .ipynb file")
    for index, cell in enumerate(cells):
        where = _Where(name, index)
        tags = _tags(cell)
        if CHECKER_TAG in tags and SOLUTION_TAG in tags:
            raise StudentEditionError(
                f"{where}: tagged both {CHECKER_TAG!r} and {SOLUTION_TAG!r}; a checker cell is handed out, "
                "so drop one of the tags"
            )
        if CHECKER_TAG in tags:
            stats.checkers_kept += 1
            cells_out.append(cell)
            continue
        if SOLUTION_TAG in tags or (gated is not None and cell.get("cell_type") != "markdown"):
            stats.cells_removed += 1
            stats.removed_text.append(_source(cell))
            if SOLUTION_TAG in tags and gated is None:
                stats.solutions += 1
            continue
        if cell.get("cell_type") == "markdown":
            inside = gated is not None
            text, gated, removed = _strip_markdown(_source(cell), gated, where, stats)
            if inside and not removed:  # an empty cell inside a gated solution
                stats.cells_removed += 1
            elif not removed:
                cells_out.append(cell)
            elif text.strip() == "":
                stats.cells_removed += 1
            else:
                new = copy.deepcopy(cell)
                new["source"] = _as_source(text) if isinstance(cell.get("source"), list) else text
                if "attachments" in new:  # an image used only by a removed solution goes with it
                    used = set(_ATTACHMENT.findall(text))
                    new["attachments"] = {k: v for k, v in new["attachments"].items() if k in used}
                    if not new["attachments"]:
                        del new["attachments"]
                cells_out.append(new)
            continue
        if SOLUTION_OUTPUT_TAG in tags and cell.get("cell_type") == "code":
            new = copy.deepcopy(cell)
            new["outputs"] = []
            new["execution_count"] = None
            stats.outputs_cleared += 1
            cells_out.append(new)
            continue
        cells_out.append(cell)
    if gated is not None:
        raise StudentEditionError(
            f"{name} cell {gated}: a solution-start is never ended; add a solution-end directive after the solution"
        )
    out = {k: v for k, v in nb.items() if k != "cells"}
    out["cells"] = cells_out
    out = {k: out[k] for k in nb}  # keep the key order of the source
    return out, stats


def _dump(nb: dict[str, Any]) -> str:
    """A notebook as nbformat writes it (indent 1, sorted keys, UTF-8, final newline)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def count_exercises(nb: dict[str, Any]) -> int:
    """Number of ``exercise`` / ``exercise-start`` directive openers in a notebook's Markdown cells."""
    n = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            for line in _lines(_source(cell)):
                head = _fence_of(line)
                n += head is not None and head[1] in ("exercise", "exercise-start")
    return n


def write_student_notebooks(src_dir: Path, out_dir: Path) -> dict[str, Stats]:
    """Write the student copy of every ``src_dir/*.ipynb`` into ``out_dir``; return the stats per file."""
    if not src_dir.is_dir():
        raise StudentEditionError(f"{src_dir}: no such folder; pass --root, the repository that has notebooks/")
    sources = sorted(src_dir.glob("*.ipynb"))
    if not sources:
        raise StudentEditionError(f"{src_dir}: no .ipynb files; pass --root, the repository that has notebooks/")
    if out_dir.resolve() == src_dir.resolve() or src_dir.resolve() in out_dir.resolve().parents:
        raise StudentEditionError(
            f"{out_dir}: would write into the source notebooks' folder; pass another --out (e.g. _build/student)"
        )
    results: dict[str, tuple[str, Stats]] = {}
    for path in sources:
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StudentEditionError(f"{path}: cannot read the notebook ({e}); fix or restore the file") from None
        if not isinstance(nb, dict):
            raise StudentEditionError(f"{path}: not a Jupyter notebook; fix or restore the file")
        student, stats = student_notebook(nb, str(path))
        before, after = count_exercises(nb), count_exercises(student)
        if after != before:
            raise StudentEditionError(
                f"{path}: {before - after} exercise(s) sit inside a solution and would be lost; move them out"
            )
        results[path.name] = (_dump(student), stats)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.ipynb"):  # a renamed chapter must not linger in the handout
        if stale.name not in results:
            stale.unlink()
    for fname, (text, _) in results.items():
        (out_dir / fname).write_text(text, encoding="utf-8")
    return {fname: stats for fname, (_, stats) in results.items()}


def student_config(config_text: str) -> str:
    """The book's ``_config.yml`` for the student edition: sphinx-exercise's ``hide_solutions: true`` and
    "(student edition)" after the title."""
    try:
        cfg = yaml.safe_load(config_text)
    except yaml.YAMLError as e:
        raise StudentEditionError(f"_config.yml: not valid YAML ({e}); fix the book's configuration") from None
    if not isinstance(cfg, dict):
        raise StudentEditionError("_config.yml: not a mapping; fix the book's configuration")
    sphinx = cfg.setdefault("sphinx", {}) or {}
    cfg["sphinx"] = sphinx
    extensions = sphinx.get("extra_extensions") or []
    if "sphinx_exercise" not in extensions:
        raise StudentEditionError("_config.yml: sphinx_exercise is not in sphinx.extra_extensions; add it")
    config = sphinx.get("config") or {}
    config["hide_solutions"] = True
    sphinx["config"] = config
    cfg["title"] = f"{cfg.get('title', 'Book')} (student edition)"
    header = "# Generated by tools/student_edition.py from the book's _config.yml: do not edit.\n"
    return header + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)


def write_book_source(root: Path, notebooks: Path, dest: Path) -> None:
    """A Jupyter Book source tree in ``dest`` that renders the student notebooks (``_build`` inside is kept)."""
    for name in ("_config.yml", "_toc.yml"):
        if not (root / name).is_file():
            raise StudentEditionError(f"{root / name}: missing; pass --root, the repository with the book")
    if dest.exists():
        for child in dest.iterdir():
            if child.name == "_build":  # Sphinx's caches and the last HTML
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "_config.yml").write_text(student_config((root / "_config.yml").read_text(encoding="utf-8")), "utf-8")
    shutil.copy2(root / "_toc.yml", dest / "_toc.yml")
    if (root / "book").is_dir():
        shutil.copytree(root / "book", dest / "book", symlinks=True)
    shutil.copytree(notebooks, dest / "notebooks")


_CLASS_ATTR = re.compile(r"""class=["']([^"']*)["']""")


def check_html(html_dir: Path) -> list[str]:
    """The built HTML pages under ``html_dir`` that still hold a solution (sphinx-exercise renders each as an
    element of class ``solution``, e.g. ``<div class="solution dropdown admonition">``), as ``page: count``."""
    if not (html_dir / "index.html").is_file():
        raise StudentEditionError(f"{html_dir}: no index.html; build the student book first (make student)")
    found = []
    for page in sorted(html_dir.rglob("*.html")):
        text = page.read_text(encoding="utf-8", errors="replace")
        n = sum("solution" in m.group(1).split() for m in _CLASS_ATTR.finditer(text))
        if n:
            found.append(f"{page.relative_to(html_dir)}: {n}")
    return found


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="student_edition.py",
        description="Write the student edition: the chapters without solutions (OUT/notebooks) and a book "
        "source that builds without them (OUT/book-src; `make student` builds it into OUT/html).",
    )
    p.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this one)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: ROOT/_build/student)")
    p.add_argument("--notebooks-only", action="store_true", help="write OUT/notebooks only, no book source")
    p.add_argument("--quiet", action="store_true", help="print only errors")
    p.add_argument(
        "--check-html",
        type=Path,
        metavar="DIR",
        help="write nothing; fail if a page of the built HTML holds a solution",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status (0 done, 1 a notebook or folder could not be used)."""
    args = build_parser().parse_args(argv)
    root: Path = args.root
    out: Path = args.out if args.out is not None else root / "_build" / "student"
    if args.check_html is not None:
        try:
            found = check_html(args.check_html)
        except StudentEditionError as e:
            print(f"student_edition: error: {e}", file=sys.stderr)
            return 1
        if found:
            print(f"student_edition: error: solutions in the student HTML ({'; '.join(found[:5])}); rebuild it with "
                  "make student", file=sys.stderr)
            return 1
        if not args.quiet:
            print(f"no solution in {args.check_html}")
        return 0
    try:
        stats = write_student_notebooks(root / "notebooks", out / "notebooks")
        if not args.notebooks_only:
            write_book_source(root, out / "notebooks", out / "book-src")
    except StudentEditionError as e:
        print(f"student_edition: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"student_edition: error: {e.filename or out}: {e.strerror}; check the folder and its permissions",
              file=sys.stderr)
        return 1
    if not args.quiet:
        for fname, s in stats.items():
            print(
                f"{fname}: {s.exercises} exercises, {s.solutions} solutions removed, {s.cells_removed} cells "
                f"removed, {s.outputs_cleared} outputs cleared, {s.checkers_kept} checker cells kept"
            )
        total = sum(s.solutions for s in stats.values())
        print(f"student notebooks ({total} solutions removed): {out / 'notebooks'}")
        if not args.notebooks_only:
            print(f"student book source (hide_solutions: true): {out / 'book-src'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
