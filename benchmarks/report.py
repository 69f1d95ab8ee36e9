"""Markdown tables and matplotlib plots from benchmark rows."""

from __future__ import annotations

from pathlib import Path

__all__ = ["embed_plot", "pipeline_plot", "search_plot", "table"]


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if 0.99 < abs(value) < 1:  # cosines and recalls near 1: show the digits that differ
            return f"{value:.5f}"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A GitHub markdown table of `rows` (columns: the given ones, else every key in order)."""
    if not rows:
        return "_(no rows)_\n"
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pipeline_plot(rows: list[dict], path: Path) -> Path:
    """Stacked p50 per step, one bar per configuration."""
    plt = _figure()
    configs = list(dict.fromkeys(r["config"] for r in rows))
    steps = [s for s in ("load", "detect", "edit", "embed", "search", "lookup")
             if any(r["step"] == s for r in rows)]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.7 * len(configs)))
    left = [0.0] * len(configs)
    for step in steps:
        widths = [next((r["p50_ms"] for r in rows if r["config"] == c and r["step"] == step), 0.0)
                  for c in configs]
        ax.barh(configs, widths, left=left, label=step)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_xlabel("p50 ms per query")
    ax.legend(ncol=len(steps), fontsize=8, loc="lower right")
    return _save(plt, fig, path)


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def embed_plot(rows: list[dict], path: Path) -> Path:
    """Images/s against batch size (2 threads) and against threads (batch 16), per input size."""
    plt = _figure()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    for size in sorted({r["input_px"] for r in rows}):
        mine = [r for r in rows if r["input_px"] == size]
        by_batch = sorted((r["batch"], r["images_per_s"]) for r in mine if r["threads"] == 2)
        by_threads = sorted((r["threads"], r["images_per_s"]) for r in mine if r["batch"] == 16)
        a.plot(*zip(*by_batch, strict=True), "o-", label=f"{size} px")
        if by_threads:
            b.plot(*zip(*by_threads, strict=True), "o-", label=f"{size} px")
    a.set(xscale="log", xlabel="batch size (2 threads)", ylabel="images/s")
    b.set(xlabel="torch threads (batch 16)", ylabel="images/s")
    a.legend()
    return _save(plt, fig, path)


def search_plot(rows: list[dict], path: Path) -> Path:
    """recall@5 against p50 latency, one panel per catalog size, one curve per index type."""
    plt = _figure()
    keys = list(dict.fromkeys((r["data"], r["n"]) for r in rows))
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.6), squeeze=False)
    for ax, (data, n) in zip(axes[0], keys, strict=True):
        mine = [r for r in rows if r["data"] == data and r["n"] == n]
        for name in dict.fromkeys(r["index"] for r in mine):
            points = [(r["p50_ms"], r["recall_at_5"]) for r in mine if r["index"] == name]
            ax.plot(*zip(*points, strict=True), "o-", label=name)
        ax.set(xscale="log", xlabel="p50 ms (one query)", ylabel="recall@5", title=f"{data}, n={n:,}")
        ax.axhline(0.95, color="grey", lw=0.5, ls="--")
        ax.legend(fontsize=7)
    return _save(plt, fig, path)
