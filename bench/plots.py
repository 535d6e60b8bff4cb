"""PNG plots of the suite's results: lateness, throughput against limit, memory over runs.

    .venv/bin/python bench/plots.py               # --results DIR (default bench/results)

Reads DIR/dockyard.json and DIR/prefect.json (whichever exist) and writes into DIR:
lateness.png (the CDF of every lateness scenario, one curve per scenario and target, with
the 2× spawn target), throughput.png (adhoc.rate4's series: runs/s against the limit, with
4 bare interpreters at a time) and memory.png (memory.runs' series: RSS against runs
done). A plot whose data no file has is left out. Needs matplotlib (``pip install
-e '.[bench]'``; ``make bench`` installs it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_RESULTS = BENCH_DIR / "results"
STYLE = {"dockyard": "-", "prefect": "--"}


def load(results: Path) -> dict[str, dict[str, Any]]:
    docs = {}
    for target in ("dockyard", "prefect"):
        path = results / f"{target}.json"
        if path.exists():
            docs[target] = json.loads(path.read_text(encoding="utf-8"))
    return docs


def _scenario(doc: dict[str, Any], key: str) -> dict[str, Any] | None:
    entry = doc.get("scenarios", {}).get(key)
    return entry if isinstance(entry, dict) else None


def lateness(docs: dict[str, dict[str, Any]], plt: Any, out: Path) -> bool:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn = False
    for target, doc in docs.items():
        for key in ("lateness.one", "lateness.hundred"):
            entry = _scenario(doc, key)
            if not entry or not entry.get("samples"):
                continue
            ms = sorted(x * 1000 for x in entry["samples"])
            share = [(i + 1) / len(ms) for i in range(len(ms))]
            ax.step(ms, share, STYLE.get(target, ":"), where="post", label=f"{target} {key}")
            drawn = True
        spawn = _scenario(doc, "floor.spawn")
        if spawn:
            ax.axvline(2000 * spawn["value"], color="grey", linestyle=STYLE.get(target, ":"),
                       linewidth=0.8, label=f"target: 2× spawn ({target} run)")  # fmt: skip
    return _save(fig, ax, drawn, out, "lateness of the flow body (ms)", "share of slots")


def throughput(docs: dict[str, dict[str, Any]], plt: Any, out: Path) -> bool:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn = False
    for target, doc in docs.items():
        entry = _scenario(doc, "adhoc.rate4")
        if entry and entry.get("series"):
            series = entry["series"]
            ax.plot(series["x"], series["y"], STYLE.get(target, ":"), marker="o", label=target)
            drawn = True
        bare = _scenario(doc, "floor.spawn_rate4")
        if bare:
            label = f"bare python -c pass, 4 at a time ({target} run)"
            ax.axhline(bare["value"], color="grey", linestyle=STYLE.get(target, ":"),
                       linewidth=0.8, label=label)  # fmt: skip
    ax.set_xscale("log", base=2)
    return _save(fig, ax, drawn, out, "limit (runs at once)", "ad-hoc no-op runs/s")


def memory(docs: dict[str, dict[str, Any]], plt: Any, out: Path) -> bool:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn = False
    for target, doc in docs.items():
        entry = _scenario(doc, "memory.runs")
        if entry and entry.get("series"):
            series = entry["series"]
            ax.plot(series["x"], series["y"], STYLE.get(target, ":"), label=f"{target} serve")
            drawn = True
    ax.set_ylim(bottom=0)
    return _save(fig, ax, drawn, out, "no-op runs done", "RSS of the serve process (MiB)")


def _save(fig: Any, ax: Any, drawn: bool, out: Path, xlabel: str, ylabel: str) -> bool:
    import matplotlib.pyplot as plt

    if drawn:
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(out, dpi=120)
    plt.close(fig)
    return drawn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="folder of *.json")
    args = parser.parse_args(argv)
    try:
        import matplotlib
    except ImportError:
        print("bench failed: no matplotlib: pip install -e '.[bench]'", file=sys.stderr)
        return 1
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    docs = load(args.results)
    if not docs:
        print(f"bench failed: no dockyard.json or prefect.json in {args.results}", file=sys.stderr)
        return 1
    for name, draw in (("lateness", lateness), ("throughput", throughput), ("memory", memory)):
        out = args.results / f"{name}.png"
        if draw(docs, plt, out):
            print(f"wrote {out}")
        else:
            print(f"{name}.png: no data for it in {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
