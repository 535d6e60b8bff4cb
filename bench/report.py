"""The suite's figures as one Markdown table: each against its floor and the issue's target.

    .venv/bin/python bench/report.py              # --results DIR (default bench/results)

Reads DIR/dockyard.json (bench/suite.py) and, when it exists, DIR/prefect.json
(bench/prefect_suite.py); prints the table and writes DIR/report.md and DIR/report.json
(the merged figures, one row per scenario). The targets are issue 14's, each a ratio to a
floor measured in the same run or an absolute bound; bench/README.md explains them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_RESULTS = BENCH_DIR / "results"


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    floor: str | None = None
    op: str | None = None  # "<=", "<" or ">="
    bound: float | None = None
    relative: bool = True  # bound × the floor, else bound in the scenario's unit


ROWS = [
    Row("floor.spawn", "`python -c pass`, start → exit"),
    Row("floor.spawn_cpu", "CPU of one `python -c pass`"),
    Row("floor.import", "import the packages serve imports"),
    Row("floor.import_rss", "RSS once they are imported"),
    Row("floor.uvicorn_health_p99", "bare FastAPI+uvicorn `GET /health` p99"),
    Row("floor.spawn_rate4", "bare `python -c pass`, 4 at a time"),
    Row("run.cpu_per_noop", "CPU per no-op run", "floor.spawn_cpu", "<=", 2),
    Row("adhoc.latency", "ad-hoc trigger → Completed", "floor.spawn", "<=", 0.050, False),
    Row("adhoc.rate4", "ad-hoc no-op runs at limit 4", "floor.spawn_rate4", ">=", 0.6),
    Row("lateness.one", "lateness p99, 1 deployment every 1 s", "floor.spawn", "<=", 2),
    Row("lateness.hundred", "lateness p99, 100 deployments every 1 s", "floor.spawn", "<=", 2),
    Row("idle.cpu_1000", "idle CPU, 1,000 deployments", None, "<", 1.0, False),
    Row("memory.runs", "RSS after 5,000 runs / after 500", None, "<=", 1.10, False),
    Row("start.health", "start → first `/health` 200", "floor.import", "<=", 1.3),
    Row("idle.rss", "idle RSS, serve process", "floor.import_rss", "<=", 1.3),
    Row("idle.rss_tree", "idle RSS, serve process and descendants", "floor.import_rss"),
    Row("health.p99_busy", "`/health` p99, runs executing", "floor.uvicorn_health_p99", "<=", 1.5),
]  # fmt: skip


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        ms = value * 1000
        return f"{value:.2f} s" if value >= 1 else f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"
    if unit == "CPU-s":
        return f"{value * 1000:.1f} ms CPU"
    if unit == "ratio":
        return f"{value:.3f}×"
    if unit == "%core":
        return f"{value:.2f} % core"
    return f"{value:.1f} {unit}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b not in (None, 0) else None


def _met(value: float | None, op: str | None, bound: float | None) -> bool | None:
    if value is None or op is None or bound is None:
        return None
    return {"<=": value <= bound, "<": value < bound, ">=": value >= bound}[op]


def _counts(entry: dict[str, Any]) -> str:
    """What a Prefect figure was measured on, where that is not obvious from the key."""
    p, notes = entry.get("params", {}), []
    if "deployments" in p:
        notes.append(f"{p['deployments']} deployments")
    if "first_runs" in p:
        notes.append(f"runs {p['first_runs']} → {p['last_runs']}")
    elif "n" in entry and entry.get("unit") == "runs/s":
        notes.append(f"{entry['n']} runs")
    return ", ".join(notes)


def _notes(entry: dict[str, Any]) -> str:
    p, notes = entry.get("params", {}), [f"n={entry.get('n')}"]
    if "p50" in p:
        notes.append(f"p50 {fmt(p['p50'], entry['unit'])}")
    if "slots_never_run" in p:
        notes.append(f"{p['slots_never_run']}/{p['slots_expected']} slots never ran")
    if p.get("capped"):
        notes.append(f"capped in time: {p.get('completed', p.get('last_runs'))} runs")
    if "first_runs" in p:
        notes.append(f"{p['first_rss_mib']:.1f} → {p['last_rss_mib']:.1f} MiB")
        notes.append(f"runs {p['first_runs']} → {p['last_runs']}")
    return ", ".join(notes)


def merge(dockyard: dict[str, Any], prefect: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per scenario: the figure, its floor, the target, Prefect's figure."""
    ours = dockyard.get("scenarios", {})
    theirs = (prefect or {}).get("scenarios", {})
    known = {row.key for row in ROWS}
    extra = [Row(key, key) for key in sorted({*ours, *theirs} - known)]
    rows = []
    for row in ROWS + extra:
        entry = ours.get(row.key)
        value = entry["value"] if entry else None
        floor_entry = ours.get(row.floor, {}) if row.floor else {}
        floor = floor_entry.get("value")
        ratio = _ratio(value, floor)
        met = _met(ratio if row.relative else value, row.op, row.bound)
        other = theirs.get(row.key)
        rows.append({
            "key": row.key, "label": row.label, "unit": entry["unit"] if entry else
            (other or {}).get("unit", ""), "dockyard": value, "floor_key": row.floor,
            "floor": floor, "floor_unit": floor_entry.get("unit"), "ratio_to_floor": ratio,
            "target": None if row.op is None else {
                "op": row.op, "bound": row.bound, "relative_to_floor": row.relative},
            "met": met,
            "notes": _notes(entry) if entry else "",
            "skipped": dockyard.get("skipped", {}).get(row.key),
            "prefect": other["value"] if other else None,
            "prefect_notes": _counts(other) if other else "",
            "prefect_skipped": (prefect or {}).get("skipped", {}).get(row.key),
            "dockyard_vs_prefect": _ratio(value, other["value"] if other else None),
        })  # fmt: skip
    return rows


def _target_text(row: dict[str, Any]) -> str:
    target = row["target"]
    if target is None:
        return "—"
    op = {"<=": "≤", "<": "<", ">=": "≥"}[target["op"]]
    if target["relative_to_floor"]:
        return f"{op} {target['bound']:g}× floor"
    return f"{op} {fmt(target['bound'], row['unit'])}"


def table(rows: list[dict[str, Any]], with_prefect: bool) -> str:
    head = "| scenario | dockyard | floor | × floor | target | met |"
    rule = "|---|---:|---:|---:|---|---|"
    if with_prefect:
        head, rule = head + " Prefect | dockyard / Prefect |", rule + "---:|---:|"
    out = [head + " notes |", rule + "---|"]
    for row in rows:
        unit, met = row["unit"], row["met"]
        value = fmt(row["dockyard"], unit) if row["skipped"] is None else "failed"
        cells = [
            f"{row['label']} (`{row['key']}`)",
            value,
            fmt(row["floor"], row["floor_unit"] or unit) if row["floor_key"] else "—",
            f"{row['ratio_to_floor']:.2f}×" if row["ratio_to_floor"] is not None else "—",
            _target_text(row),
            "—" if met is None else ("met" if met else "**not met**"),
        ]
        if with_prefect:
            theirs = "skipped" if row["prefect_skipped"] else fmt(row["prefect"], unit)
            if row["prefect_notes"] and not row["prefect_skipped"]:
                theirs += f" ({row['prefect_notes']})"  # Prefect ran smaller counts
            vs = row["dockyard_vs_prefect"]
            cells += [theirs, f"{vs:.2f}×" if vs is not None else "—"]
        out.append("| " + " | ".join(cells + [row["notes"]]) + " |")
    return "\n".join(out)


def machine(doc: dict[str, Any], name: str) -> str:
    env = doc.get("environment", {})
    load = ""
    if "loadavg_start" in env:
        start, end = env["loadavg_start"][0], env.get("loadavg_end", ["?"])[0]
        load = f", load average {start} → {end}"
    quick = " (--quick counts)" if env.get("quick") else ""
    elapsed = f", {doc['elapsed_seconds']:.0f} s" if "elapsed_seconds" in doc else ""
    return (
        f"{name} {env.get('target_version', '?')}: {env.get('platform', '?')}, "
        f"{env.get('cpus', '?')} CPUs, Python {env.get('python', '?')}, "
        f"measured {env.get('at', '?')}{load}{elapsed}{quick}"
    )


def footnotes(rows: list[dict[str, Any]], docs: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for row in rows:
        for who, reason in (("dockyard", row["skipped"]), ("Prefect", row["prefect_skipped"])):
            if reason:
                out.append(f"- `{row['key']}` ({who}): {reason}")
    for name, doc in docs.items():
        if doc.get("timings"):
            spent = ", ".join(f"{label} {sec:.0f} s" for label, sec in doc["timings"].items())
            out.append(f"- {name} timings: {spent}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="folder of *.json")
    args = parser.parse_args(argv)
    path = args.results / "dockyard.json"
    if not path.exists():
        print(f"bench failed: no {path}: run bench/suite.py (make bench) first", file=sys.stderr)
        return 1
    docs = {"dockyard": json.loads(path.read_text(encoding="utf-8"))}
    if (args.results / "prefect.json").exists():
        docs["Prefect"] = json.loads((args.results / "prefect.json").read_text(encoding="utf-8"))
    rows = merge(docs["dockyard"], docs.get("Prefect"))
    lines = [table(rows, "Prefect" in docs), ""]
    lines += [machine(doc, name) + "  " for name, doc in docs.items()]
    lines += ["", *footnotes(rows, docs)]
    text = "\n".join(lines).rstrip() + "\n"
    (args.results / "report.md").write_text(text, encoding="utf-8")
    merged = {"environment": {k: d.get("environment", {}) for k, d in docs.items()}, "rows": rows}
    (args.results / "report.json").write_text(json.dumps(merged, indent=1) + "\n", "utf-8")
    print(text, end="", flush=True)
    print(f"written to {args.results / 'report.md'} and report.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
