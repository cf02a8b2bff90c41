"""The accuracy-vs-sparsity table and plot of an ``evstream prune`` run (its ``results.json``).

Prints a Markdown table (validation top-1 and mean firing rate per criterion and sparsity, the dense
net first) and, when matplotlib is installed, writes a PNG of top-1 against sparsity for each
criterion with the dense net's top-1 and the 1-point band below it.

Run: ``python benchmarks/plot_prune.py runs/prune_nmnist/*/results.json --png docs/prune_nmnist.png``
(several files: their rows are merged, one per criterion, sharing one dense run).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def load_rows(paths: list[Path]) -> tuple[list[dict], dict]:
    """The merged rows (one dense row) and the first file's run settings."""
    rows, settings = [], {}
    for path in paths:
        data = json.loads(path.read_text())
        settings = settings or {k: v for k, v in data.items() if k != "rows"}
        rows += [r for r in data["rows"] if r["criterion"] != "dense" or not any(x["criterion"] == "dense" for x in rows)]
    return rows, settings


def table(rows: list[dict]) -> str:
    dense = next(r for r in rows if r["criterion"] == "dense")
    criteria = list(dict.fromkeys(r["criterion"] for r in rows if r["criterion"] != "dense"))
    sparsities = sorted({r["sparsity"] for r in rows if r["criterion"] != "dense"})
    lines = ["| sparsity | " + " | ".join(f"{c} top-1 (firing rate)" for c in criteria) + " |",
             "| --- |" + " --- |" * len(criteria),
             f"| 0% (dense) | " + " | ".join(f"{dense['top1']:.1%} ({dense['firing_rate']:.3f})" for _ in criteria) + " |"]
    for s in sparsities:
        cells = []
        for c in criteria:
            row = next((r for r in rows if r["criterion"] == c and r["sparsity"] == s), None)
            cells.append("-" if row is None else f"{row['top1']:.1%} ({row['firing_rate']:.3f})")
        lines.append(f"| {s:.0%} | " + " | ".join(cells) + " |")
    return "\n".join(lines).replace("%", " %")


def plot(rows: list[dict], path: Path, title: str) -> bool:
    """Write the PNG; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    dense = next(r for r in rows if r["criterion"] == "dense")
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.axhline(100 * dense["top1"], color="k", lw=1, label=f"dense {dense['top1']:.1%}")
    ax.axhspan(100 * dense["top1"] - 1, 100 * dense["top1"], color="k", alpha=0.08, label="within 1 point")
    for criterion, marker in zip(dict.fromkeys(r["criterion"] for r in rows if r["criterion"] != "dense"), "os^v"):
        points = sorted((r["sparsity"], r["top1"]) for r in rows if r["criterion"] == criterion)
        ax.plot([100 * s for s, _ in points], [100 * a for _, a in points], marker=marker, label=criterion)
    ax.set_xlabel("sparsity of conv and linear weights (%)")
    ax.set_ylabel("validation top-1 (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="results.json of evstream prune runs")
    parser.add_argument("--png", type=Path, help="write the plot here (needs matplotlib)")
    parser.add_argument("--title", default="cnn_nmnist on real N-MNIST (95 validation recordings)",
                        help="plot title")
    args = parser.parse_args()
    rows, settings = load_rows(args.results)
    print(f"settings: {settings}")
    print(table(rows))
    if args.png:
        print(f"wrote {args.png}" if plot(rows, args.png, args.title) else "matplotlib is not installed: no plot")


if __name__ == "__main__":
    main()
