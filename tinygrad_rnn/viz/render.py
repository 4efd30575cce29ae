"""Running Graphviz on DOT text (``render``), with a size check that points large unrolled graphs
to the linear-in-T layout instead of letting ``dot`` run for minutes; atomic file writes."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "DOT_MAX_NODES", "DOT_MAX_STEP_BOXES", "GraphTooLargeForDot", "GraphvizNotFound", "INSTALL_HINT",
    "dot_size", "dot_too_large", "render", "write_text_atomic",
]

INSTALL_HINT = (
    "Install Graphviz: Debian/Ubuntu `apt-get install graphviz`, Fedora `dnf install graphviz`, "
    "macOS `brew install graphviz`, conda `conda install -c conda-forge graphviz`, Windows "
    "`winget install graphviz`; then check that `dot -V` runs."
)
# Measured with dot 2.43 on 2 cores (scripts/viz_render_times.py): an unrolled LSTM of 60
# steps drawn op by op (981 nodes) lays out in 1.2 s, but collapsed steps (one box3d node per
# step, edges labelled x count) take 0.7 s at 30 steps, 3.9 s at 40, 9.5 s at 50 and over 30 s
# at 100. Above either limit `render` refuses and points to the linear-in-T layout.
DOT_MAX_NODES = 1000
DOT_MAX_STEP_BOXES = 30

_NODE_LINE = re.compile(r"^\s*(?!legend_)\w+ \[", re.M)
_STEP_BOX_LINE = re.compile(r"^\s*s\d+ \[", re.M)


class GraphvizNotFound(RuntimeError):
    """The Graphviz ``dot`` program is not installed (the DOT source was still written)."""


class GraphTooLargeForDot(ValueError):
    """The graph is too large for Graphviz's global layout to finish in reasonable time."""


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename, so a reader never
    sees half a file and a failure leaves any old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def dot_size(source: str) -> tuple[int, int]:
    """(nodes, collapsed step boxes) declared in DOT text written by ``to_dot``, the legend not
    counted."""
    return len(_NODE_LINE.findall(source)), len(_STEP_BOX_LINE.findall(source))


def dot_too_large(source: str) -> bool:
    """Whether Graphviz's ``dot`` would take more than a few seconds on ``source``."""
    nodes, boxes = dot_size(source)
    return nodes > DOT_MAX_NODES or boxes > DOT_MAX_STEP_BOXES


def render(dot_or_roots: Any, path: str | Path, format: str = "svg",  # noqa: A002 - graphviz's name
           timeout: float | None = None, check_size: bool = True) -> Path:
    """Write the DOT source next to ``path`` (``.dot``) and lay it out with Graphviz's ``dot``.

    ``dot_or_roots`` is a ``graphviz.Digraph`` (from ``to_dot``) or the root tensors. The output
    gets the ``.<format>`` suffix if it lacks it. Raises :class:`GraphvizNotFound` (after writing
    the ``.dot`` file) when ``dot`` is not installed, and :class:`GraphTooLargeForDot` (a
    ``ValueError``, also after writing the ``.dot`` file) when the graph has more than
    ``DOT_MAX_NODES`` nodes or ``DOT_MAX_STEP_BOXES`` collapsed steps, where ``dot`` would take
    minutes:
    use ``viz.to_svg`` (linear in the number of steps) or pass ``check_size=False``.
    Returns the written output path.
    """
    if not isinstance(format, str) or not re.fullmatch(r"[a-z0-9]+(:[a-z0-9]+)*", format):
        raise ValueError(f"render: format must be a Graphviz output format such as 'svg' or 'png', got {format!r}")
    source = getattr(dot_or_roots, "source", None)
    if not isinstance(source, str):
        from .dot_writer import to_dot

        source = to_dot(dot_or_roots).source
    out = Path(path)
    suffix = "." + format.split(":")[0]
    if out.suffix != suffix:
        out = out.with_name(out.name + suffix)
    if suffix in (".dot", ".gv"):
        return write_text_atomic(out, source)
    dot_path = write_text_atomic(out.with_suffix(".dot"), source)
    if check_size and dot_too_large(source):
        nodes, boxes = dot_size(source)
        raise GraphTooLargeForDot(
            f"render: the graph has {nodes} nodes ({boxes} collapsed steps), more than Graphviz's "
            f"global layout handles quickly (limits {DOT_MAX_NODES} nodes, {DOT_MAX_STEP_BOXES} "
            f"collapsed steps; `dot` would take minutes). Use the linear-in-T layout instead: "
            f"viz.to_svg(...).save(path) or `tinygrad-rnn graph` (it picks that layout itself); "
            f"or pass check_size=False to wait for dot. The DOT source is in {dot_path}."
        )
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizNotFound(
            f"render: the Graphviz program `dot` was not found on PATH, so {out.name} was not made; "
            f"the DOT source is in {dot_path}. {INSTALL_HINT} Then run "
            f"`dot -T{format} {dot_path} -o {out}` or call render() again."
        )
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        result = subprocess.run([exe, f"-T{format}", "-o", tmp, str(dot_path)],
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"render: `dot` failed with exit code {result.returncode} on {dot_path}: "
                               f"{result.stderr.strip()}")
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out
