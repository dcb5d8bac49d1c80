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
    tagged ``verify``: a printed comparison is a verification and must not stay display-only (an
    exercise's ``checker`` cell, which asserts, is exempt);
(d) equation labels are unique across the book: MyST labels (``$$ ... $$ (label)`` and
    ``{math}`` with ``:label:``) and the derived ``\\tag{..}`` numbers (those with a letter, such
    as (24a)) name one equation each. A chapter that reuses a label of an earlier chapter (in
    ``_toc.yml`` order) fails. Plain paper numbers such as (24) may be shown again in a later
    chapter, since they name the paper's own equation;
(e) every figure has a numbered caption and a label: a code cell with an ``image/png`` output
    carries myst-nb's cell metadata ``mystnb.figure.caption`` (non-empty) and ``mystnb.figure.name``
    (rendered as a numbered figure without re-execution; ``numfig`` is on in Jupyter Book), and a
    glued figure (a ``glue`` output holding ``image/png``) shown by a ``{glue:figure}`` directive
    has a caption and ``:name:``. A cell with several image outputs would give one name to several
    figures, so it fails too (split the cell). Figure names are unique across the book (cell
    metadata, ``{glue:figure}`` and ``{figure}`` directives together);
(f) every ``{glue}``/``{glue:}``/``{glue:text}``/``{glue:any}``/``{glue:md}`` role and ``{glue:figure}``
    / ``{glue:math}`` directive in a notebook's Markdown names a value that the notebook's committed
    outputs glue (an output whose metadata ``scrapbook.name`` is that name), so that the rendered
    number exists and comes from this notebook's run (``other_notebook::name`` is looked up there);
(g) the committed outputs are current, as far as the file can tell: the notebook was executed
    (at least one code cell has an ``execution_count``), the counts that are present increase
    strictly from top to bottom (no cell was re-run or moved out of order after a run), and no
    output is an error.
"""

from __future__ import annotations

import ast
import io
import itertools
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


def is_checker(cell: dict) -> bool:
    """A cell tagged ``checker`` (an exercise's checker, kept in the student edition) that asserts.

    It defines a function that asserts a student's answer against the package and prints "correct";
    its comparisons are assertions, so rule (c) does not ask for the ``verify`` tag.
    """
    return "checker" in _tags(cell) and has_assertion(_source(cell))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_printed_comparisons_are_verify_cells(path: Path) -> None:
    """(c): every code cell that prints a comparison is tagged 'verify'."""
    untagged = [
        i
        for i, c in enumerate(_cells(path))
        if c["cell_type"] == "code" and "verify" not in _tags(c) and prints_comparison(_source(c))
        and not is_checker(c)
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


# --------------------------------------------------------------------------- (e) figures, (f) glue, (g) outputs

GLUE_ROLE = re.compile(r"\{glue(?::(?:any|text|md)?)?\}`([^`]+)`")
GLUE_DIRECTIVE = re.compile(r"^\s*(?:`{3,}|~{3,}|:{3,})\{glue:(?:figure|math|md|any)\}[ \t]*(\S+)", re.MULTILINE)
GLUE_FIGURE = re.compile(
    r"^[ \t]*(`{3,}|~{3,}|:{3,})\{glue:figure\}[ \t]*(\S+)[ \t]*\n(.*?)^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL
)
FIGURE_DIRECTIVE = re.compile(r"^[ \t]*(`{3,}|~{3,}|:{3,})\{figure\}[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
NAME_OPTION = re.compile(r"^[ \t]*:name:[ \t]*(\S+)", re.MULTILINE)


def _glue_name(output: dict) -> str | None:
    """The name a ``myst_nb.glue`` output stores (metadata ``scrapbook.name``), or None."""
    meta = output.get("metadata", {}).get("scrapbook", {})
    return meta.get("name") if isinstance(meta, dict) else None


def glued_names(cells: list[dict]) -> set[str]:
    """Every name that the notebook's committed outputs glue."""
    return {n for c in cells if c["cell_type"] == "code" for o in c.get("outputs", []) if (n := _glue_name(o))}


def glue_references(markdown: str) -> list[str]:
    """The glue names a Markdown text refers to (roles, then directives), formats stripped."""
    refs = []
    for ref in GLUE_ROLE.findall(markdown):
        notebook, sep, key = ref.partition("::")          # other_notebook::name[:format]
        refs.append(f"{notebook}::{key.split(':')[0]}" if sep else ref.split(":")[0])
    return refs + GLUE_DIRECTIVE.findall(markdown)


def figure_problems(cells: list[dict], markdown: str) -> tuple[list[str], list[str]]:
    """(problems of rule (e) in one notebook, the figure names it defines, in order)."""
    problems: list[str] = []
    names: list[str] = []
    glued_figures = {m[1]: m[2] for m in GLUE_FIGURE.findall(markdown)}
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        outputs = cell.get("outputs", [])
        images = [o for o in outputs if "image/png" in o.get("data", {}) and not _glue_name(o)]
        glued = [_glue_name(o) for o in outputs if "image/png" in o.get("data", {}) and _glue_name(o)]
        fig = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
        if fig and not images:
            problems.append(f"cell {i} has a figure caption but no image output (is the figure displayed?)")
        if images:
            caption, name = str(fig.get("caption", "")).strip(), str(fig.get("name", "")).strip()
            if not caption or not name:
                problems.append(f"cell {i} shows a figure without mystnb.figure caption and name in its metadata")
            if len(images) > 1:
                problems.append(f"cell {i} shows {len(images)} figures under one caption and name; split the cell")
            if name:
                names.append(name)
        for gname in glued:
            body = glued_figures.get(gname)
            if body is None:
                continue  # glued, not shown as a figure here (rule (f) checks the references)
            caption = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith(":")).strip()
            label = NAME_OPTION.findall(body)
            if not caption or not label:
                problems.append(f"{{glue:figure}} {gname} needs a caption and a :name:")
            names += label
    for _, body in FIGURE_DIRECTIVE.findall(markdown):
        names += NAME_OPTION.findall(body)
    return problems, names


def execution_problems(cells: list[dict]) -> list[str]:
    """Rule (g) on one notebook's cells."""
    problems = []
    counts = [(i, c.get("execution_count")) for i, c in enumerate(cells) if c["cell_type"] == "code"]
    present = [(i, n) for i, n in counts if n is not None]
    if counts and not present:
        problems.append("no code cell has an execution count: the notebook was never executed")
    for (i, a), (j, b) in itertools.pairwise(present):
        if not b > a:
            problems.append(f"cell {j} has execution count {b} after cell {i}'s {a}: re-execute the notebook top to bottom")
    for i, c in enumerate(cells):
        for o in c.get("outputs", []) if c["cell_type"] == "code" else []:
            if o.get("output_type") == "error":
                problems.append(f"cell {i} has an error output ({o.get('ename', 'error')})")
    return problems


BOOK_MARKDOWN_FILES = [p for p in BOOK_FILES if p.suffix == ".md"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_figures_have_captions_and_unique_names(path: Path) -> None:
    """(e): every figure of the notebook is captioned and named, and no name is used elsewhere."""
    problems, names = figure_problems(_cells(path), _markdown(path))
    others: dict[str, str] = {}
    for other in [*NOTEBOOKS, *BOOK_MARKDOWN_FILES]:
        if other != path:
            cells = _cells(other) if other.suffix == ".ipynb" else []
            for name in figure_problems(cells, _markdown(other))[1]:
                others.setdefault(name, other.name)
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"figure name '{name}' is used {names.count(name)} times in this notebook")
    for name in sorted(set(names) & set(others)):
        problems.append(f"figure name '{name}' is also used in {others[name]}")
    assert not problems, (
        f"{path.name}: " + "; ".join(problems)
        + ' (cell metadata: {"mystnb": {"figure": {"caption": "...", "name": "fig-NN-what"}}})'
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_glue_references_have_outputs(path: Path) -> None:
    """(f): every glue reference in the notebook's Markdown has a glued output of that name."""
    glued = glued_names(_cells(path))
    missing = []
    for ref in glue_references(_markdown(path)):
        if "::" in ref:
            other_name, _, key = ref.partition("::")
            other = ROOT / "notebooks" / f"{Path(other_name).stem}.ipynb"
            if not other.exists() or key not in glued_names(_cells(other)):
                missing.append(ref)
        elif ref not in glued:
            missing.append(ref)
    assert not missing, (
        f"{path.name}: the Markdown refers to glued value(s) {sorted(set(missing))} that no committed output "
        "glues; glue them in a code cell (myst_nb.glue(name, value, display=False)) and re-execute the notebook"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_outputs_are_current(path: Path) -> None:
    """(g): the notebook was executed top to bottom and holds no error output."""
    problems = execution_problems(_cells(path))
    assert not problems, f"{path.name}: " + "; ".join(problems)


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
    checker = "def check_my_f(fn):\n    assert torch.allclose(fn(1), f(1))\n    print('correct')"
    assert is_checker({"metadata": {"tags": ["checker"]}, "source": checker})
    assert not is_checker({"metadata": {"tags": ["checker"]}, "source": "print(torch.allclose(a, b))"})
    assert not is_checker({"metadata": {}, "source": checker})
    text = "$$\na\n$$ (eq-one)\n\n```{math}\n:label: eq-two\nb\n```\n$$ c \\tag{3a} $$ $$ d \\tag{4} $$"
    assert equation_labels(text) == (["eq-one", "eq-two"], ["3a", "4"])

    # (e) figures
    def code(outputs: list[dict], **figure: str) -> dict:
        meta = {"mystnb": {"figure": figure}} if figure else {}
        return {"cell_type": "code", "metadata": meta, "outputs": outputs, "execution_count": 1, "source": ""}

    png = {"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}, "metadata": {}}
    assert figure_problems([code([png], caption="A bird.", name="fig-x")], "") == ([], ["fig-x"])
    assert figure_problems([code([png])], "")[0]                                     # no caption, no name
    assert figure_problems([code([png], caption=" ", name="fig-x")], "")[0]           # empty caption
    assert figure_problems([code([png], caption="A bird.")], "")[0]                   # no name
    assert figure_problems([code([png, png], caption="Two.", name="fig-x")], "")[0]   # two figures, one name
    assert figure_problems([code([{"output_type": "stream", "name": "stdout", "text": "x"}])], "") == ([], [])
    text_repr = {"output_type": "execute_result", "data": {"text/plain": "<Figure size 640x480 with 1 Axes>"}}
    assert figure_problems([code([text_repr], caption="A diagram.", name="fig-x")], "")[0]  # captioned, not shown
    glued_png = {**png, "metadata": {"scrapbook": {"name": "g1", "mime_prefix": ""}}}
    shown = "```{glue:figure} g1\n:name: fig-g1\n\nThe glued bird.\n```\n"
    assert figure_problems([code([glued_png])], shown) == ([], ["fig-g1"])
    assert figure_problems([code([glued_png])], "```{glue:figure} g1\n:name: fig-g1\n```\n")[0]  # no caption
    assert figure_problems([], "```{figure} a.png\n:name: fig-a\n\nA.\n```\n") == ([], ["fig-a"])

    # (f) glue references
    glue_out = {"output_type": "display_data", "data": {"text/plain": "3"}, "metadata": {"scrapbook": {"name": "n_words"}}}
    assert glued_names([code([glue_out]), code([png])]) == {"n_words"}
    md = "We have {glue:}`n_words` words, {glue:text}`chance:.2f` and {glue}`x`.\n```{glue:figure} fig_a\n```"
    assert glue_references(md) == ["n_words", "chance", "x", "fig_a"]
    assert glue_references("{glue:text}`03_text_encoding::n:.1f`") == ["03_text_encoding::n"]
    assert glue_references("no glue role here: {glue:}") == []

    # (g) outputs are current
    def ran(n: int | None, outputs: list[dict] | None = None) -> dict:
        return {"cell_type": "code", "metadata": {}, "outputs": outputs or [], "execution_count": n, "source": "x"}

    assert execution_problems([ran(1), {"cell_type": "markdown", "source": ""}, ran(2), ran(5)]) == []
    assert execution_problems([ran(1), ran(None), ran(3)]) == []                      # the counts present increase
    assert execution_problems([ran(2), ran(1)])                                       # out of order
    assert execution_problems([ran(1), ran(1)])                                       # a cell re-run or copied
    assert execution_problems([ran(None), ran(None)])                                 # never executed
    assert execution_problems([ran(1, [{"output_type": "error", "ename": "ValueError", "evalue": "", "traceback": []}])])
