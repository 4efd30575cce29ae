"""Every ```python block of README.md and docs/ runs, so a renamed argument breaks the build, not
the reader.

The blocks of one page run in order in one namespace (a reader follows a page top to bottom), in a
fresh temporary directory (files the code writes land there), with ``examples/`` importable. The
only marker is an HTML comment right before a block, visible in the Markdown source:

    <!-- docs-test: needs torch -->

which skips that block when one of the named modules (an optional extra) is not installed; CI
installs the extras, so there it runs. There is no marker that skips a block for any other reason.
"""
from __future__ import annotations

import importlib.util
import os
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                   re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"<!--\s*docs-test:\s*(?P<text>[^<>]*?)\s*-->\s*\Z")


class DocsCodeError(AssertionError):
    """A code block of the documentation failed; the message names the page and the line."""


@dataclass
class Block:
    path: Path
    line: int             # 1-based line of the block's first code line
    code: str
    needs: tuple[str, ...]


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of a Markdown file, with the modules a ``needs`` marker names."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        if match.group("lang").strip() != "python":
            continue
        before = text[:match.start()].rstrip()
        needs: tuple[str, ...] = ()
        marker = MARKER.search(before[-300:])
        if marker:
            words = marker.group("text").split()
            if not words or words[0] != "needs" or len(words) < 2:
                raise DocsCodeError(f"{path}: unknown docs-test marker {marker.group(0)!r}; "
                                    "expected '<!-- docs-test: needs MODULE [MODULE ...] -->'")
            needs = tuple(words[1:])
        line = text.count("\n", 0, match.start("body")) + 1
        blocks.append(Block(path, line, textwrap.dedent(match.group("body")), needs))
    return blocks


def run_page(path: Path, workdir: Path) -> list[Block]:
    """Run the page's blocks in order in one namespace, in ``workdir``; return the skipped ones."""
    namespace: dict = {"__name__": "__docs__"}
    skipped = []
    old_cwd, old_path = os.getcwd(), list(sys.path)
    os.chdir(workdir)
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        for block in python_blocks(path):
            missing = [m for m in block.needs if importlib.util.find_spec(m) is None]
            if missing:
                skipped.append(block)
                continue
            try:
                exec(compile(block.code, f"{path}:{block.line}", "exec"), namespace)
            except Exception as exc:
                raise DocsCodeError(f"the code block at {path}:{block.line} failed: "
                                    f"{type(exc).__name__}: {exc}") from exc
    finally:
        os.chdir(old_cwd)
        sys.path[:] = old_path
    return skipped


PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))
PAGES_WITH_CODE = [p for p in PAGES if python_blocks(p)]


def test_the_pages_have_code_to_run():
    # guards the extractor: a fence regex that matched nothing would make every page pass
    assert ROOT / "README.md" in PAGES_WITH_CODE
    assert sum(len(python_blocks(p)) for p in PAGES_WITH_CODE) >= 20


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_code_runs(page, tmp_path):
    skipped = run_page(page, tmp_path)
    for block in skipped:   # visible in -rs output, never silent
        print(f"skipped {block.path.name}:{block.line}: needs {' '.join(block.needs)}")


def test_a_broken_copy_of_the_readme_fails(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "requires_grad=True" in readme
    broken = tmp_path / "README.md"
    broken.write_text(readme.replace("requires_grad=True", "requires_grads=True", 1), encoding="utf-8")
    first = python_blocks(broken)[0]
    with pytest.raises(DocsCodeError, match=rf"{re.escape(str(broken))}:{first.line} failed: TypeError"):
        run_page(broken, tmp_path)


def test_blocks_run_in_order_and_indented_blocks_are_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("Text.\n\n```python\nx = 2\n```\n\n- a list item:\n\n  ```python\n  assert x == 3, x\n  ```\n")
    blocks = python_blocks(page)
    assert [b.line for b in blocks] == [4, 10]
    with pytest.raises(DocsCodeError, match=r"page.md:10 failed: AssertionError: 2"):
        run_page(page, tmp_path)


def test_needs_marker_skips_only_when_the_module_is_missing(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- docs-test: needs a_module_that_is_not_installed -->\n```python\nraise SystemError\n```\n\n"
                    "<!-- docs-test: needs numpy -->\n```python\nraise ValueError('ran')\n```\n")
    with pytest.raises(DocsCodeError, match="ValueError: ran"):
        run_page(page, tmp_path)
    page.write_text("<!-- docs-test: skip -->\n```python\nraise ValueError\n```\n")
    with pytest.raises(DocsCodeError, match="unknown docs-test marker"):
        run_page(page, tmp_path)
