"""Rendered-page check for the built book (run by ``make test`` after ``jupyter-book build``).

For every page listed in ``_toc.yml`` this script

1. loads the built HTML page in headless Chromium (no network; MathJax is served from the
   book itself) and reads the DOM after scripts have run;
2. checks that the page rendered (its title and body are present and no MathJax error
   element appears);
3. counts the typeset equations (``<mjx-container`` elements) and compares them with the
   number of display and inline equations in the page's source (Markdown file or the
   notebook's Markdown cells and figure captions).

Exit status 0 when every page passes, 1 otherwise (each failure is listed).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_FENCE = re.compile(r"^(```+|~~~+)(.*?)$\n(.*?)^\1\s*$", re.MULTILINE | re.DOTALL)
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)
_AMS = re.compile(
    r"^\s*\\begin\{(equation|align|gather|multline|eqnarray)(\*?)\}.*?\\end\{\1\2\}",
    re.MULTILINE | re.DOTALL,
)
_MATH_ROLE = re.compile(r"\{math\}`[^`]+`")
_INLINE_CODE = re.compile(r"(`+)(?!\{).+?\1")
# inline math may wrap onto the next line of its paragraph, but not across a blank line
_INLINE = re.compile(r"(?<![\\$])\$(?![\s$])((?:[^$\n]|\n(?![ \t]*\n))+?)(?<![\s\\])\$(?!\$)")


def count_math(markdown: str) -> int:
    """Count display and inline equations in MyST Markdown the way the book writes them."""
    n = 0
    text = markdown

    def fence(m: re.Match[str]) -> str:
        nonlocal n
        info = m.group(2).strip()
        if info.startswith("{math}"):
            n += 1
        elif info.startswith("{") and not info.startswith("{code"):
            # directives (exercise, solution, note, ...) hold Markdown: count inside them
            return m.group(3)
        return ""

    for _ in range(3):  # nested directives
        text = _FENCE.sub(fence, text)
    text = text.replace(r"\$", "")
    n += len(_MATH_ROLE.findall(text))
    text = _MATH_ROLE.sub("", text)
    n += len(_DISPLAY.findall(text))
    text = _DISPLAY.sub("", text)
    n += len(_AMS.findall(text))
    text = _AMS.sub("", text)
    text = _INLINE_CODE.sub("", text)
    n += len(_INLINE.findall(text))
    return n


def source_markdown(path: Path) -> str:
    """The Markdown of a page source: a ``.md`` file, or a notebook's Markdown cells plus the figure
    captions of its code cells (``metadata.mystnb.figure.caption``, which myst-nb renders as Markdown)."""
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf-8"))
        parts = []
        for c in nb["cells"]:
            if c["cell_type"] == "markdown":
                parts.append("".join(c["source"]))
                continue
            figure = c.get("metadata", {}).get("mystnb", {}).get("figure", {})
            caption = figure.get("caption") if isinstance(figure, dict) else None
            if c["cell_type"] == "code" and isinstance(caption, str):
                # one caption per figure output (myst-nb wraps each image output in the figure)
                n_figures = sum(1 for o in c.get("outputs", []) if o.get("output_type") in ("display_data", "execute_result"))
                parts.extend([caption] * n_figures)
        return "\n\n".join(parts)
    return path.read_text(encoding="utf-8")


def toc_files(root: Path) -> list[str]:
    """Page paths (without suffix) listed in ``_toc.yml``, root first."""
    toc = (root / "_toc.yml").read_text(encoding="utf-8")
    files = re.findall(r"^\s*(?:root|-\s*file):\s*(\S+)\s*$", toc, re.MULTILINE)
    return files


@dataclass
class PageResult:
    page: str
    expected: int
    found: int
    errors: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors


def dump_dom(chromium: str, html: Path) -> str:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=20000",
            "--dump-dom", html.resolve().as_uri(),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if out.returncode != 0:
        raise RuntimeError(f"chromium failed on {html}: {out.stderr[-500:]}")
    return out.stdout


def check_page(chromium: str, root: Path, html_dir: Path, page: str) -> PageResult:
    src = next((root / f"{page}{s}" for s in (".md", ".ipynb") if (root / f"{page}{s}").exists()), None)
    html = html_dir / f"{page}.html"
    errors: list[str] = []
    if src is None:
        return PageResult(page, 0, 0, [f"no source file for {page} (.md or .ipynb)"])
    if not html.exists():
        return PageResult(page, 0, 0, [f"{html} was not built"])
    expected = count_math(source_markdown(src))
    dom = dump_dom(chromium, html)
    found = dom.count("<mjx-container")
    if "<main" not in dom or "bd-article" not in dom:
        errors.append("page body missing (theme did not render)")
    if "<mjx-merror" in dom or "data-mjx-error" in dom:
        errors.append("MathJax reported a TeX error")
    if found != expected:
        errors.append(f"{found} typeset equations, {expected} in the source")
    return PageResult(page, expected, found, errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html_dir", type=Path, help="the built book, e.g. _build/html")
    parser.add_argument("--chromium", default=None, help="browser binary (default: chromium on PATH)")
    args = parser.parse_args(argv)
    chromium = args.chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("check_pages: chromium not found; install it (apt-get install chromium)", file=sys.stderr)
        return 1
    if not (args.html_dir / "_static" / "mathjax" / "tex-mml-chtml.js").exists():
        print(f"check_pages: local MathJax missing under {args.html_dir}/_static/mathjax", file=sys.stderr)
        return 1
    pages = toc_files(ROOT)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda p: check_page(chromium, ROOT, args.html_dir, p), pages))
    bad = 0
    for r in results:
        status = "ok  " if r.ok else "FAIL"
        print(f"{status} {r.page}: {r.found}/{r.expected} equations typeset")
        for e in r.errors:
            print(f"       - {e}")
        bad += not r.ok
    print(f"{len(results) - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
