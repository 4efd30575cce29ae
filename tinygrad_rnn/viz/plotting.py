"""A matplotlib plot of gradient norms through time (the optional 'plot' extra)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ["plot_gradient_flow"]


def plot_gradient_flow(results: Mapping[str, Sequence[float]], path: str | Path,
                       title: str = "Gradient flow through time",
                       ylabel: str = "||dL/dh_t||") -> Path:
    """Save a log-scale plot of ``||dL/dh_t||`` against t, one line per entry of ``results``
    (e.g. ``{"RNN": gradient_flow(rnn, x), "LSTM": gradient_flow(lstm, x)}``). Needs matplotlib."""
    if not isinstance(results, Mapping) or not results:
        raise ValueError("plot_gradient_flow: results must be a non-empty mapping label -> norms per step")
    curves = {}
    for label, norms in results.items():
        norms = np.asarray(norms, dtype=np.float64)
        if norms.ndim != 1 or norms.size == 0:
            raise ValueError(f"plot_gradient_flow: results[{label!r}] must be a non-empty 1-D sequence, got shape {norms.shape}")
        curves[str(label)] = norms
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "plot_gradient_flow needs matplotlib, the optional 'plot' extra: "
            "pip install tinygrad_rnn[plot]"
        ) from error
    figure = Figure(figsize=(6.4, 4.0))
    ax = figure.subplots()
    for label, norms in curves.items():
        ax.semilogy(np.arange(norms.size), np.where(norms > 0, norms, np.nan), marker=".", label=label)
    ax.set_xlabel("time step t")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    return path
