"""The student edition (``make student``, tools/student_edition.py) removes every solution and nothing else.

Hand-made notebooks cover each solution form sphinx-exercise accepts, with the expected student cells
written out by hand; the real chapters are checked with an independent, regex-based reading of their
solution and exercise blocks. Nothing is executed and the book is not built.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from script_loader import load_script

ROOT = Path(__file__).resolve().parents[1]
SECRET = "SECRET"  # every solution body in the hand-made notebooks contains this word; nothing else does


@pytest.fixture(scope="module")
def se():  # type: ignore[no-untyped-def]
    return load_script("tools/student_edition.py", "student_edition")


def _split(text: str) -> list[str]:
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def md(text: str, tags: list[str] | None = None, cid: str = "m") -> dict[str, Any]:
    meta: dict[str, Any] = {"tags": tags} if tags else {}
    return {"cell_type": "markdown", "id": cid, "metadata": meta, "source": _split(text)}


def code(text: str, tags: list[str] | None = None, cid: str = "c", out: str = "out\n") -> dict[str, Any]:
    meta: dict[str, Any] = {"tags": tags} if tags else {}
    return {
        "cell_type": "code",
        "execution_count": 1,
        "id": cid,
        "metadata": meta,
        "outputs": [{"name": "stdout", "output_type": "stream", "text": [out]}],
        "source": _split(text),
    }


def notebook(*cells: dict[str, Any]) -> dict[str, Any]:
    return {
        "cells": list(cells),
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def src(cell: dict[str, Any]) -> str:
    return "".join(cell["source"])


EXERCISE = "```{exercise}\n:label: ex-1\nCompute $a$.\n```\n"

SINGLE_CELL_FORMS = {
    "backticks": "```{solution} ex-1\n:class: dropdown\nThe SECRET is 42.\n```",
    "four backticks around code": "````{solution} ex-1\n:class: dropdown\nSECRET:\n\n```python\nprint(42)\n```\n````",
    "longer closing fence": "```{solution} ex-1\nSECRET\n`````",
    "tildes": "~~~{solution} ex-1\nSECRET\n~~~",
    "colon fence": ":::{solution} ex-1\n:class: dropdown\n:label: sol-1\nSECRET $x$\n:::",
    "indented": "  ```{solution} ex-1\n  SECRET\n  ```",
    "space before brace": "``` {solution} ex-1\nSECRET\n```",
    "yaml options": "```{solution} ex-1\n---\nclass: dropdown\n---\nSECRET\n```",
}


@pytest.mark.parametrize("form", sorted(SINGLE_CELL_FORMS))
def test_single_cell_solution_forms(se, form: str) -> None:  # type: ignore[no-untyped-def]
    sol = SINGLE_CELL_FORMS[form]
    nb = notebook(md(f"Intro.\n\n{EXERCISE}\n{sol}\n\nAfter the solution."), code("x = 1\n"))
    out, stats = se.student_notebook(nb, "t.ipynb")
    assert src(out["cells"][0]) == f"Intro.\n\n{EXERCISE}\nAfter the solution."
    assert out["cells"][1] == nb["cells"][1]
    assert SECRET not in json.dumps(out)
    assert stats.solutions == 1 and stats.exercises == 1


def test_solution_at_the_end_of_a_cell_and_alone_in_a_cell(se) -> None:  # type: ignore[no-untyped-def]
    nb = notebook(
        md(f"{EXERCISE}\n```{{solution}} ex-1\nSECRET\n```"),
        md("```{solution} ex-1\nSECRET again\n```\n"),
        md(f"{EXERCISE}\n```{{solution}} ex-1\nSECRET\n```\n"),
        md("Text right before\n```{solution} ex-1\nSECRET\n```\n\nkept"),
    )
    out, stats = se.student_notebook(nb)
    assert [src(c) for c in out["cells"]] == [EXERCISE.rstrip("\n"), EXERCISE, "Text right before\n\nkept"]
    assert stats.solutions == 4 and stats.cells_removed == 1


def test_solution_nested_in_another_directive(se) -> None:  # type: ignore[no-untyped-def]
    text = "````{admonition} Try it\n:class: tip\nDo it.\n\n```{solution} ex-1\nSECRET\n```\n\nDone.\n````\nEnd."
    out, _ = se.student_notebook(notebook(md(text)))
    assert src(out["cells"][0]) == "````{admonition} Try it\n:class: tip\nDo it.\n\nDone.\n````\nEnd."


def test_solution_syntax_inside_a_code_block_is_text(se) -> None:  # type: ignore[no-untyped-def]
    text = (
        "How to write one:\n\n````markdown\n```{solution} ex-1\nshown, not a solution\n```\n````\n\n"
        "```{math}\n{solution}\n```"
    )
    nb = notebook(md(text))
    out, stats = se.student_notebook(nb)
    assert out["cells"][0] == nb["cells"][0] and stats.solutions == 0


def test_gated_solution_across_cells_keeps_checker(se) -> None:  # type: ignore[no-untyped-def]
    nb = notebook(
        md(f"{EXERCISE}\n```{{solution-start}} ex-1\n:class: dropdown\n```\nThe SECRET starts here.", cid="a"),
        code("def f(x):\n    return 42  # SECRET\n", cid="b"),
        code("from csagan import f as ref\nassert f(2) == ref(2)\n", tags=["checker"], cid="chk"),
        md("More SECRET text.", cid="d"),
        md("Last SECRET line.\n```{solution-end}\n```\n\nAfter the solution.", cid="e"),
        code("y = 2\n", cid="f"),
    )
    out, stats = se.student_notebook(nb)
    assert [c["id"] for c in out["cells"]] == ["a", "chk", "e", "f"]
    assert src(out["cells"][0]) == EXERCISE.rstrip("\n")
    assert out["cells"][1] == nb["cells"][2]  # the checker cell, outputs included
    assert src(out["cells"][2]) == "After the solution."
    assert out["cells"][3] == nb["cells"][5]
    assert SECRET not in json.dumps(out)
    assert stats.solutions == 1 and stats.checkers_kept == 1 and stats.cells_removed == 2


def test_gated_solution_within_one_cell(se) -> None:  # type: ignore[no-untyped-def]
    text = (
        "Before.\n\n:::{solution-start} ex-1\n:::\nSECRET\n\n```python\nSECRET = 1\n```\n"
        ":::{solution-end}\n:::\n\nAfter."
    )
    out, _ = se.student_notebook(notebook(md(text)))
    assert src(out["cells"][0]) == "Before.\n\nAfter."


def test_tagged_cells(se) -> None:  # type: ignore[no-untyped-def]
    nb = notebook(
        code("answer = 42  # SECRET\n", tags=["solution"], cid="sol"),
        md("A worked SECRET answer.", tags=["solution"], cid="msol"),
        code("print(answer_of_model())\n", tags=["solution-output"], cid="so", out="SECRET 42\n"),
        code("assert my_f(1) == ref(1)\n", tags=["checker"], cid="chk"),
        code("z = 3\n", tags=["remove-input"], cid="other"),
    )
    out, stats = se.student_notebook(nb)
    assert [c["id"] for c in out["cells"]] == ["so", "chk", "other"]
    cleared = out["cells"][0]
    assert cleared["outputs"] == [] and cleared["execution_count"] is None
    assert cleared["source"] == nb["cells"][2]["source"] and cleared["metadata"] == nb["cells"][2]["metadata"]
    assert out["cells"][1] == nb["cells"][3] and out["cells"][2] == nb["cells"][4]
    assert nb["cells"][2]["outputs"] != []  # the input notebook is not modified
    assert SECRET not in json.dumps(out)
    assert stats.solutions == 2 and stats.outputs_cleared == 1 and stats.checkers_kept == 1


def test_attachment_of_a_solution_goes_with_it(se) -> None:  # type: ignore[no-untyped-def]
    cell = md("Look: ![fig](attachment:a.png)\n\n```{solution} ex-1\nSECRET ![s](attachment:s.png)\n```")
    cell["attachments"] = {"a.png": {"image/png": "AAAA"}, "s.png": {"image/png": "BBBB"}}
    out, _ = se.student_notebook(notebook(cell))
    assert out["cells"][0]["attachments"] == {"a.png": {"image/png": "AAAA"}}


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ([md("```{solution} ex-1\nSECRET")], "never closed"),
        ([md("text\n```{solution-end}\n```")], "without a solution-start"),
        ([md("```{solution-start} ex-1\n```\nSECRET"), code("x = 1\n")], "never ended"),
        ([code("x\n", tags=["solution", "checker"])], "tagged both"),
        ([md("```{solution-start} a\n```\n```{solution-start} b\n```")], "inside the solution started"),
        ([md("````{note}\n```{solution-start} a\n```\n````")], "inside another directive"),
    ],
)
def test_malformed_solutions_are_one_line_errors(se, cells, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(se.StudentEditionError, match=message) as err:
        se.student_notebook(notebook(*cells), "nb.ipynb")
    assert str(err.value).startswith("nb.ipynb") and "\n" not in str(err.value)


def _write(path: Path, nb: dict[str, Any]) -> None:
    path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def test_notebook_files_and_cli(se, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    plain = notebook(md("# Title\n\nNo exercises — ünïcode."), code("print('x')\n"))
    _write(root / "notebooks" / "01_plain.ipynb", plain)
    _write(root / "notebooks" / "02_ex.ipynb", notebook(md(f"{EXERCISE}\n```{{solution}} ex-1\nSECRET\n```")))
    before = {p.name: p.read_bytes() for p in (root / "notebooks").iterdir()}
    out = tmp_path / "student"
    (out / "notebooks").mkdir(parents=True)
    (out / "notebooks" / "99_renamed.ipynb").write_text("{}")  # stale: removed
    assert se.main(["--root", str(root), "--out", str(out), "--notebooks-only", "--quiet"]) == 0
    assert {p.name: p.read_bytes() for p in (root / "notebooks").iterdir()} == before
    assert sorted(p.name for p in (out / "notebooks").iterdir()) == ["01_plain.ipynb", "02_ex.ipynb"]
    # a notebook without solutions is copied byte for byte
    assert (out / "notebooks" / "01_plain.ipynb").read_bytes() == before["01_plain.ipynb"]
    assert SECRET not in (out / "notebooks" / "02_ex.ipynb").read_text()
    assert not (out / "book-src").exists()

    # errors: one line on stderr, exit status 1, nothing written into the sources
    capsys.readouterr()
    assert se.main(["--root", str(root), "--out", str(root), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "source notebooks' folder" in err and "Traceback" not in err
    _write(root / "notebooks" / "03_bad.ipynb", notebook(md("```{solution} x\nSECRET")))
    assert se.main(["--root", str(root), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "03_bad.ipynb cell 0" in err and "never closed" in err
    (root / "notebooks" / "03_bad.ipynb").write_text("{not json")
    assert se.main(["--root", str(root), "--out", str(out), "--quiet"]) == 1
    assert "cannot read the notebook" in capsys.readouterr().err


def test_an_exercise_inside_a_solution_is_refused(se, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "nb").mkdir()
    inner = "````{solution} ex-1\nSECRET\n```{exercise}\n:label: ex-2\nlost\n```\n````"
    _write(tmp_path / "nb" / "a.ipynb", notebook(md(inner)))
    with pytest.raises(se.StudentEditionError, match="exercise"):
        se.write_student_notebooks(tmp_path / "nb", tmp_path / "out")


# ------------------------------------------------------------------ the student HTML's configuration
def test_student_config_switches_on_hide_solutions(se) -> None:  # type: ignore[no-untyped-def]
    original = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert original["sphinx"]["config"].get("hide_solutions") is not True  # the teacher's book shows them
    student = yaml.safe_load(se.student_config((ROOT / "_config.yml").read_text(encoding="utf-8")))
    assert student["sphinx"]["config"]["hide_solutions"] is True
    assert "sphinx_exercise" in student["sphinx"]["extra_extensions"]
    assert student["title"].endswith("(student edition)")
    # everything else is the book's own configuration
    student["sphinx"]["config"].pop("hide_solutions")
    student.pop("title"), original.pop("title")
    assert student == original


def test_book_source_tree(se, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    (root / "book").mkdir()
    (root / "book" / "intro.md").write_text("# Intro\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n")
    (root / "_config.yml").write_text("title: T\nsphinx:\n  extra_extensions: [sphinx_exercise]\n  config:\n    a: 1\n")
    _write(root / "notebooks" / "01.ipynb", notebook(md(f"{EXERCISE}\n```{{solution}} ex-1\nSECRET\n```")))
    out = tmp_path / "student"
    (out / "book-src" / "_build").mkdir(parents=True)
    (out / "book-src" / "stale.md").write_text("old")
    assert se.main(["--root", str(root), "--out", str(out), "--quiet"]) == 0
    tree = out / "book-src"
    assert sorted(p.name for p in tree.iterdir()) == ["_build", "_config.yml", "_toc.yml", "book", "notebooks"]
    assert yaml.safe_load((tree / "_config.yml").read_text())["sphinx"]["config"] == {"a": 1, "hide_solutions": True}
    assert (tree / "_toc.yml").read_bytes() == (root / "_toc.yml").read_bytes()
    assert (tree / "notebooks" / "01.ipynb").read_bytes() == (out / "notebooks" / "01.ipynb").read_bytes()
    assert (tree / "book" / "intro.md").read_text() == "# Intro\n"
    (root / "_config.yml").write_text("title: T\nsphinx:\n  config: {}\n")
    assert se.main(["--root", str(root), "--out", str(out), "--quiet"]) == 1  # no sphinx_exercise: refused


def test_check_html_finds_rendered_solutions(se, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    html = tmp_path / "html"
    (html / "notebooks").mkdir(parents=True)
    (html / "index.html").write_text('<div class="exercise admonition">Ex</div><p class="resolution">r</p>')
    page = html / "notebooks" / "05.html"
    page.write_text('<div class="solution-free">x</div>')
    assert se.check_html(html) == []
    assert se.main(["--check-html", str(html), "--quiet"]) == 0
    page.write_text('<div class="solution dropdown admonition" id="s1">x</div><div class=\'solution\'>y</div>')
    assert se.check_html(html) == ["notebooks/05.html: 2"]
    assert se.main(["--check-html", str(html)]) == 1
    assert "notebooks/05.html: 2" in capsys.readouterr().err
    assert se.main(["--check-html", str(tmp_path / "none")]) == 1  # not built


def test_makefile_student_target() -> None:
    make = (ROOT / "Makefile").read_text(encoding="utf-8")
    rule = re.search(r"^student: .*?(?=^\S)", make, re.MULTILINE | re.DOTALL)
    assert rule is not None, "Makefile has no student target"
    body = rule.group(0)
    assert "tools/student_edition.py --out" in body and "jupyter-book build $(STUDENT)/book-src" in body
    assert "--check-html $(STUDENT)/html" in body
    assert re.search(r"^book-student: student$", make, re.MULTILINE)


# ------------------------------------------------------------------ the real chapters
# An independent reading of the chapters: a directive block is a fence of backticks or colons with
# {name}, closed by the same fence (the book's own style; checked to cover every solution below).
_BLOCK = re.compile(r"^(?P<f>`{3,}|:{3,}|~{3,})\{(?P<name>[a-z-]+)\}[^\n]*\n(?P<body>.*?)^(?P=f)[ \t]*$", re.MULTILINE | re.DOTALL)
_ANY_SOLUTION = re.compile(r"\{solution(-start|-end)?\}")
_GATED = re.compile(
    r"^(?P<f>`{3,}|:{3,})\{solution-start\}[^\n]*\n.*?^(?P=f)[ \t]*$(?P<body>.*?)"
    r"^(?P<g>`{3,}|:{3,})\{solution-end\}[^\n]*\n.*?^(?P=g)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


def _markdown(nb: dict[str, Any]) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def _all_text(nb: dict[str, Any]) -> str:
    parts = []
    for c in nb["cells"]:
        parts.append("".join(c["source"]))
        for o in c.get("outputs", []):
            parts.append(json.dumps(o, ensure_ascii=False))
    return "\n".join(parts)


def test_real_chapters(se, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert len(list((ROOT / "notebooks").glob("*.ipynb"))) >= 12
    assert _check_chapters(se, ROOT, tmp_path) >= 40


def test_chapter_check_reads_gated_and_tagged_solutions(se, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The real-chapter check on forms the chapters may use later, and it fails when a body is left behind."""
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    nb = notebook(
        md(f"{EXERCISE}\n```{{solution-start}} ex-1\n```\nThe gated answer is written here at length.", cid="a"),
        code("def answer_function(x):\n    return x + 42  # the long gated body line\n", cid="b"),
        code("assert answer_function(1) == reference(1)  # checker\n", tags=["checker"], cid="k"),
        md("```{solution-end}\n```\nAfter.", cid="c"),
        code("tagged_solution_variable = compute_the_answer()\n", tags=["solution"], cid="d"),
        md("```{exercise}\n:label: ex-2\nTwo.\n```\n\n````{solution} ex-2\nA fenced answer of some length.\n````"),
    )
    _write(root / "notebooks" / "01.ipynb", nb)
    assert _check_chapters(se, root, tmp_path / "ok") == 3

    real = se.student_notebook

    def leaky(nb: dict[str, Any], name: str = "notebook"):  # type: ignore[no-untyped-def]
        out, stats = real(nb, name)
        out["cells"].append(code("def answer_function(x):\n    return x + 42  # the long gated body line\n"))
        return out, stats

    se.student_notebook = leaky
    try:
        with pytest.raises(AssertionError, match="solution text remains"):
            _check_chapters(se, root, tmp_path / "leak")
    finally:
        se.student_notebook = real


def _check_chapters(se, root: Path, tmp_path: Path) -> int:  # type: ignore[no-untyped-def]
    """Run the tool on ``root``'s chapters and check every student notebook; return the number of solutions."""
    sources = sorted((root / "notebooks").glob("*.ipynb"))
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sources}
    assert se.main(["--root", str(root), "--out", str(tmp_path), "--notebooks-only", "--quiet"]) == 0
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sources} == digest  # sources unchanged
    assert sorted(p.name for p in (tmp_path / "notebooks").iterdir()) == sorted(digest)

    n_solutions = 0
    for path in sources:
        nb = json.loads(path.read_text(encoding="utf-8"))
        student = json.loads((tmp_path / "notebooks" / path.name).read_text(encoding="utf-8"))
        name = path.name
        # no solution directive, tagged solution cell or solution body text remains
        for text in _markdown(student):
            assert not _ANY_SOLUTION.search(text), f"{name}: a solution directive remains"
        assert not any("solution" in c.get("metadata", {}).get("tags", []) for c in student["cells"]), name
        source_md = "\n".join(_markdown(nb))
        fenced = [m.group("body") for m in _BLOCK.finditer(source_md) if m.group("name") == "solution"]
        # gated solutions: everything between a solution-start block and the next solution-end block,
        # across cells of any kind (cells tagged checker excepted); and cells tagged solution
        handed = [c for c in nb["cells"] if "checker" not in c["metadata"].get("tags", [])]
        tagged = ["".join(c["source"]) for c in handed if "solution" in c["metadata"].get("tags", [])]
        untagged = {"cells": [c for c in handed if "solution" not in c["metadata"].get("tags", [])]}
        gated = [m.group("body") for m in _GATED.finditer(_all_text(untagged))]
        assert len(fenced) == len(re.findall(r"\{solution\}", source_md)), f"{name}: a solution this test cannot read"
        assert len(gated) == source_md.count("{solution-start}") == source_md.count("{solution-end}"), name
        bodies = fenced + gated + tagged
        n_solutions += len(bodies)
        checkers = [c for c in nb["cells"] if "checker" in c["metadata"].get("tags", [])]
        outside = _GATED.sub("", _all_text(untagged)) + _all_text({"cells": checkers})
        outside = _BLOCK.sub(lambda m: "" if m.group("name") == "solution" else m.group(0), outside)
        student_text = _all_text(student)
        for body in bodies:
            for line in body.splitlines():
                line = line.strip()
                if len(line) >= 20 and not line.startswith(":") and line not in outside:
                    assert line not in student_text, f"{name}: solution text remains: {line!r}"
        # every exercise is still there, word for word
        exercises = [m.group(0) for m in _BLOCK.finditer(source_md) if m.group("name").startswith("exercise")]
        student_md = "\n".join(_markdown(student))
        for block in exercises:
            assert block in student_md, f"{name}: an exercise was changed or lost: {block[:60]!r}"
        assert len([m for m in _BLOCK.finditer(student_md) if m.group("name").startswith("exercise")]) == len(
            exercises
        )
        # code cells and checker cells are handed out as they are (none of them is a solution today)
        kept = [c for c in nb["cells"] if c["cell_type"] == "code" and "solution" not in c["metadata"].get("tags", [])]
        plain = not gated and not tagged
        if plain:
            assert [c for c in student["cells"] if c["cell_type"] == "code"] == kept, name
        assert all(c in student["cells"] for c in checkers), f"{name}: a checker cell was removed"
        # the rest of the text is unchanged: the student Markdown is the source with its solutions cut out
        assert not plain or re.sub(r"\s+", " ", student_md).strip() == re.sub(
            r"\s+", " ", _BLOCK.sub(lambda m: "" if m.group("name") == "solution" else m.group(0), source_md)
        ).strip(), name
    return n_solutions
