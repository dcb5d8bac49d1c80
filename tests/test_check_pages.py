"""The rendered-page check counts equations in page sources correctly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from script_loader import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cp():  # type: ignore[no-untyped-def]
    return load_script("tools/check_pages.py", "check_pages")


def test_counts_inline_display_and_directives(cp) -> None:  # type: ignore[no-untyped-def]
    src = "\n".join(
        [
            "Inline $a+b$ and $x$, but not a price \\$5 or `$code$`.",
            "$$",
            "y = mx + c",
            "$$ (eq-line)",
            "```{math}",
            ":label: kl",
            "D_{KL}",
            "```",
            "```python",
            "s = '$not$ math'",
            "```",
            ":::{exercise}",
            "Show $f(x)$.",
            ":::",
            "```{solution} ex1",
            ":class: dropdown",
            "Use $$z$$ here.",
            "```",
            "A {math}`\\alpha` role.",
        ]
    )
    # inline: a+b, x, f(x); display: y=mx+c, z; directive: 1; role: 1
    assert cp.count_math(src) == 7


def test_inline_math_may_wrap_within_a_paragraph(cp) -> None:  # type: ignore[no-untyped-def]
    assert cp.count_math("weights $\\lambda_1, \\lambda_2,\n\\lambda_3$ of (24)") == 1
    assert cp.count_math("a $5 note\n\nand $6 more") == 0  # never across a blank line


def test_no_math_counts_zero(cp) -> None:  # type: ignore[no-untyped-def]
    assert cp.count_math("Plain text with a cost of 5 dollars.") == 0


def test_notebook_source_reads_markdown_cells_only(cp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["# T\n", "$a$"], "metadata": {}},
            {"cell_type": "code", "source": ["print('$b$')"], "metadata": {}, "outputs": []},
        ]
    }
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    assert cp.count_math(cp.source_markdown(path)) == 1


def test_notebook_source_counts_figure_captions_once_per_figure(cp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    image = {"output_type": "display_data", "data": {"image/png": "", "text/plain": ""}, "metadata": {}}
    stream = {"output_type": "stream", "name": "stdout", "text": "$c$"}
    meta = {"mystnb": {"figure": {"caption": "samples $x_g$ and $x$", "name": "fig-x"}}}
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["$a$"], "metadata": {}},
            {"cell_type": "code", "source": ["f()"], "metadata": meta, "outputs": [image, stream]},
            {"cell_type": "code", "source": ["g()"], "metadata": meta, "outputs": []},  # not run: no figure
            {"cell_type": "code", "source": ["h()"], "metadata": {}, "outputs": [image]},  # no caption
        ]
    }
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    assert cp.count_math(cp.source_markdown(path)) == 3  # $a$ and the caption's two


def test_toc_lists_every_page(cp) -> None:  # type: ignore[no-untyped-def]
    pages = cp.toc_files(ROOT)
    assert pages[0] == "book/intro"
    for page in pages:
        assert any((ROOT / f"{page}{s}").exists() for s in (".md", ".ipynb")), page


def test_notebook_source_includes_figure_captions(cp, tmp_path) -> None:  # type: ignore[no-untyped-def]
    png = {"output_type": "display_data", "data": {"image/png": "iVBOR"}, "metadata": {}}
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["Text with $a$."]},
        {"cell_type": "code", "metadata": {"mystnb": {"figure": {"caption": "Codes $e$ and $\\bar e$.", "name": "f"}}},
         "outputs": [png], "source": [], "execution_count": 1},
        # a caption on a cell without a figure is not rendered, so it is not counted
        {"cell_type": "code", "metadata": {"mystnb": {"figure": {"caption": "Unused $x$.", "name": "g"}}},
         "outputs": [], "source": [], "execution_count": 2},
    ]
    nb = tmp_path / "page.ipynb"
    nb.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert cp.count_math(cp.source_markdown(nb)) == 3

