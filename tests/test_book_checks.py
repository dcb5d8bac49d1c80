"""The book's verifications fail loudly, and its equation labels are unique (issue 16).

A *verification cell* is a code cell tagged ``verify`` (cell metadata ``tags``). It must end in an
``assert`` or a call of :func:`csagan.notebook.check` / :func:`csagan.notebook.check_that`, so that a
wrong value stops ``make execute``, nbval and papermill instead of being committed as a printed
``False``. The tests here read the committed notebooks only (nothing is executed):

(a) every ``verify`` cell contains such an assertion (found in the parsed source, so comments and
    strings do not count);
(b) every chapter has at least one ``verify`` cell (all twelve derive or measure something;
    :data:`EXEMPT` would list a chapter with its reason);
(c) a code cell that *prints* a comparison (``allclose``, ``isclose``, ``torch.equal``,
    ``np.testing``, ``.abs().max()``, "max abs", or a comparison operator inside ``print``) is
    tagged ``verify``: a printed comparison is a verification and must not stay display-only;
(d) equation labels are unique across the book: MyST labels (``$$ ... $$ (label)`` and
    ``{math}`` with ``:label:``) and the derived ``\\tag{..}`` numbers (those with a letter, such
    as (24a)) name one equation each. A chapter that reuses a label of an earlier chapter (in
    ``_toc.yml`` order) fails. Plain paper numbers such as (24) may be shown again in a later
    chapter, since they name the paper's own equation.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

EXEMPT: dict[str, str] = {}
"""Chapters allowed to have no ``verify`` cell, each with the reason (none today)."""

CHECK_FUNCTIONS = {"check", "check_that"}

# (c): words that make a printed line a comparison
COMPARISON_WORDS = re.compile(
    r"allclose|isclose|torch\.equal|array_equal|np\.testing|numpy\.testing|max abs|"
    r"\.abs\(\)\.max\(|\babs\([^\n]*\)\.max\(",
    re.IGNORECASE,
)
COMPARE_OPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _python(src: str) -> str:
    """The cell's Python without IPython magics and shell lines (kept as blank lines)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in src.splitlines())


def _without_comments(src: str) -> str:
    """The source with comments removed (tokenize), or the source if it does not tokenize."""
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(src).readline) if t.type != tokenize.COMMENT]
        return tokenize.untokenize(tokens)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return src


def _call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def has_assertion(src: str) -> bool:
    """True if the cell's code contains ``assert`` or calls ``check(`` / ``check_that(``."""
    try:
        tree = ast.parse(_python(src))
    except SyntaxError:
        code = _without_comments(_python(src))
        return bool(re.search(r"\bassert\b|\bcheck(_that)?\s*\(", code))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call) and _call_name(node) in CHECK_FUNCTIONS:
            return True
    return False


def prints_comparison(src: str) -> bool:
    """The heuristic (c): does the cell print the result of a comparison?"""
    code = _python(src)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        text = _without_comments(code)
        return "print(" in text and (bool(COMPARISON_WORDS.search(text)) or " == " in text)
    prints = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _call_name(n) == "print"]
    if not prints:
        return False
    if COMPARISON_WORDS.search(_without_comments(code)):
        return True
    for call in prints:
        for arg in [*call.args, *(k.value for k in call.keywords)]:
            for node in ast.walk(arg):
                if isinstance(node, ast.Compare) and any(isinstance(op, COMPARE_OPS) for op in node.ops):
                    return True
    return False


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_verify_cells_assert(path: Path) -> None:
    """(a) and (b): the chapter has verify cells, and each of them asserts."""
    cells = [(i, c) for i, c in enumerate(_cells(path)) if c["cell_type"] == "code"]
    verify = [(i, c) for i, c in cells if "verify" in _tags(c)]
    if path.stem not in EXEMPT:
        assert verify, (
            f"{path.name} has no code cell tagged 'verify'; tag its verifications (cell metadata "
            "tags: ['verify']) and make them assert (csagan.notebook.check / check_that)"
        )
    silent = [i for i, c in verify if not has_assertion(_source(c))]
    assert not silent, (
        f"{path.name}: verify cell(s) {silent} (index among all cells) contain no assert, check( "
        "or check_that(; a printed comparison alone cannot fail"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_printed_comparisons_are_verify_cells(path: Path) -> None:
    """(c): every code cell that prints a comparison is tagged 'verify'."""
    untagged = [
        i
        for i, c in enumerate(_cells(path))
        if c["cell_type"] == "code" and "verify" not in _tags(c) and prints_comparison(_source(c))
    ]
    assert not untagged, (
        f"{path.name}: cell(s) {untagged} print a comparison but are not tagged 'verify' "
        "(add the tag and an assert / check(...))"
    )


# --------------------------------------------------------------------------- (d) labels

MYST_LABEL = re.compile(r"^\$\$[ \t]*\(([^)\s]+)\)[ \t]*$", re.MULTILINE)
MATH_DIRECTIVE = re.compile(r"^(`{3,}|:{3,})\{math\}[^\n]*\n((?::[^\n]*\n)*)", re.MULTILINE)
DIRECTIVE_LABEL = re.compile(r"^:label:\s*(\S+)", re.MULTILINE)
TAG = re.compile(r"\\tag\*?\{([^}]*)\}")


def _book_files() -> list[Path]:
    """Notebooks and book/*.md pages in _toc.yml order (files not in the TOC last)."""
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    order = re.findall(r"(?:root|file):\s*(\S+)", toc)
    files = [*NOTEBOOKS, *sorted((ROOT / "book").glob("*.md"))]
    rank = {name: k for k, name in enumerate(order)}

    def key(p: Path) -> tuple[int, str]:
        rel = p.relative_to(ROOT).with_suffix("").as_posix()
        return (rank.get(rel, len(rank)), rel)

    return sorted(files, key=key)


def _markdown(path: Path) -> str:
    if path.suffix == ".ipynb":
        return "\n\n".join(_source(c) for c in _cells(path) if c["cell_type"] == "markdown")
    return path.read_text(encoding="utf-8")


def equation_labels(text: str) -> tuple[list[str], list[str]]:
    """(MyST equation labels, derived \\tag numbers such as '24a') of a markdown text, in order."""
    myst = MYST_LABEL.findall(text)
    for _, options in MATH_DIRECTIVE.findall(text):
        myst += DIRECTIVE_LABEL.findall(options)
    tags = [t.strip() for t in TAG.findall(text)]
    return myst, tags


BOOK_FILES = _book_files()


@pytest.mark.parametrize("path", BOOK_FILES, ids=[p.relative_to(ROOT).as_posix() for p in BOOK_FILES])
def test_equation_labels_unique(path: Path) -> None:
    """(d): no equation label of this file repeats within it or in an earlier file of the book."""
    earlier_myst: dict[str, str] = {}
    earlier_tags: dict[str, str] = {}
    for other in BOOK_FILES:
        if other == path:
            break
        myst, tags = equation_labels(_markdown(other))
        for label in myst:
            earlier_myst.setdefault(label, other.name)
        for tag in tags:
            earlier_tags.setdefault(tag, other.name)
    myst, tags = equation_labels(_markdown(path))
    problems = []
    for label in sorted({x for x in myst if myst.count(x) > 1}):
        problems.append(f"label '{label}' is used {myst.count(label)} times in this file")
    for label in sorted(set(myst) & set(earlier_myst)):
        problems.append(f"label '{label}' is already used in {earlier_myst[label]}")
    for tag in sorted({x for x in tags if tags.count(x) > 1}):
        problems.append(f"\\tag{{{tag}}} appears {tags.count(tag)} times in this file")
    for tag in sorted(set(tags) & set(earlier_tags)):
        if not tag.isdigit():
            problems.append(
                f"derived equation number ({tag}) already names an equation in {earlier_tags[tag]}; "
                "number this one differently or refer to that one"
            )
    assert not problems, f"{path.relative_to(ROOT)}: " + "; ".join(problems)


# --------------------------------------------------------------------------- the rules themselves


def test_rules_on_examples() -> None:
    """The helpers above flag what they should and nothing else (each rule can fail)."""
    assert has_assertion("x = 1\nassert x == 1")
    assert has_assertion("check('a', 1.0, 1.0)")
    assert has_assertion("csagan.notebook.check_that('b', True)")
    assert not has_assertion("print(torch.allclose(a, b))  # check(a, b) later")
    assert not has_assertion("s = 'assert check(x)'\nprint(s)")
    assert has_assertion("%matplotlib inline\nassert True")
    assert prints_comparison("print('ok:', torch.allclose(a, b))")
    assert prints_comparison("print(f'in order: {kept == sorted(kept)}')")
    assert prints_comparison("print('max diff', (a - b).abs().max())")
    assert prints_comparison("print(bool(np.abs(d - e).max() < 1e-4))")
    assert not prints_comparison("print(f'{name}: {value:.3f}')")
    assert not prints_comparison("if a == b:\n    x = 1\nprint(x)")
    assert not prints_comparison("y = torch.allclose(a, b)  # no print")
    text = "$$\na\n$$ (eq-one)\n\n```{math}\n:label: eq-two\nb\n```\n$$ c \\tag{3a} $$ $$ d \\tag{4} $$"
    assert equation_labels(text) == (["eq-one", "eq-two"], ["3a", "4"])
