"""bench/suite.py, report.py and plots.py: the results format, the table, the plots.

The suite runs for real (``--quick``, a few cheap scenarios, real serve processes); the
report and the plots also run on hand-written results, so the merge with Prefect's file
and the met / not met column are checked against known figures.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, dockyard_env, pid_alive

BENCH = REPO / "bench"
CHEAP = ("floor.spawn", "adhoc.latency", "start.health")
ENTRY_KEYS = {"value", "unit", "stat", "n", "params", "samples"}


def bench(script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True, text=True, timeout=timeout, env=dockyard_env(), cwd=REPO,
    )  # fmt: skip


def entry(value: float, unit: str, stat: str = "median", **params: Any) -> dict[str, Any]:
    return {"value": value, "unit": unit, "stat": stat, "n": 1, "params": params,
            "samples": [value]}  # fmt: skip


def results(target: str, scenarios: dict[str, Any], **extra: Any) -> dict[str, Any]:
    env = {"platform": "Linux", "cpus": 2, "python": "3.11", "target_version": "9.9"}
    return {"target": target, "environment": env, "scenarios": scenarios, **extra}


@pytest.mark.slow
def test_quick_suite_writes_the_format_and_the_report_has_its_rows(tmp_path: Path) -> None:
    out, work = tmp_path / "dockyard.json", tmp_path / "work"
    done = bench("suite.py", "--quick", "--only", ",".join(CHEAP), "--out", str(out),
                 "--workdir", str(work))  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["target"] == "dockyard"
    assert {"platform", "cpus", "python", "target_version"} <= set(doc["environment"])
    assert doc["skipped"] == {}
    assert set(doc["scenarios"]) == set(CHEAP)
    for key, found in doc["scenarios"].items():
        assert ENTRY_KEYS <= set(found), key
        assert found["n"] == len(found["samples"]) > 0, key
        assert found["stat"] == "median" and found["unit"] == "s", key
        assert found["value"] == statistics.median(found["samples"]), key
        assert all(sample > 0 for sample in found["samples"]), key
    assert doc["scenarios"]["adhoc.latency"]["n"] == 3  # --quick's count
    # Every serve process the suite started is gone: their state files are in `work`.
    logs = list(work.rglob("*.log"))
    assert {log.stem for log in logs} >= {"adhoc", "start-0", "start-1"}
    for pid in _pids_under(work):
        assert not pid_alive(pid), f"pid {pid} outlived the suite"

    report = bench("report.py", "--results", str(tmp_path))
    assert report.returncode == 0, report.stderr
    table = (tmp_path / "report.md").read_text()
    assert report.stdout == table
    for key in CHEAP:
        assert sum(f"(`{key}`)" in line for line in table.splitlines()) == 1, key
    assert "Prefect" not in table.splitlines()[0]
    rows = {row["key"]: row for row in json.loads((tmp_path / "report.json").read_text())["rows"]}
    latency = rows["adhoc.latency"]
    assert latency["dockyard"] == doc["scenarios"]["adhoc.latency"]["value"]
    assert latency["floor"] == doc["scenarios"]["floor.spawn"]["value"]
    assert latency["ratio_to_floor"] == pytest.approx(latency["dockyard"] / latency["floor"])
    assert latency["met"] is (latency["dockyard"] <= 0.050)
    assert rows["memory.runs"]["dockyard"] is None  # not run: a row without a figure


def _pids_under(work: Path) -> list[int]:
    """Processes whose command line names a file under ``work`` (the suite's serves)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(work) in cmdline.read_bytes().decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def test_only_names_the_unknown_scenario() -> None:
    done = bench("suite.py", "--only", "floor.spawn,adhoc.nope", timeout=60)
    assert done.returncode == 2
    assert "unknown scenario(s) adhoc.nope" in done.stderr


def test_report_merges_prefect_and_judges_each_target(tmp_path: Path) -> None:
    ours = {
        "floor.spawn": entry(0.020, "s"),
        "floor.spawn_rate4": entry(100.0, "runs/s", "rate"),
        "adhoc.latency": entry(0.040, "s"),  # ≤ 50 ms: met
        "adhoc.rate4": entry(50.0, "runs/s", "rate"),  # 0.5× the floor, needs 0.6×: not met
        "lateness.one": entry(0.030, "s", "p99", p50=0.010),  # 1.5× spawn: met
    }
    theirs = {"adhoc.latency": entry(4.0, "s"), "adhoc.rate4": entry(0.5, "runs/s", "rate")}
    (tmp_path / "dockyard.json").write_text(
        json.dumps(results("dockyard", ours, skipped={"idle.cpu_1000": "failed: BenchError: x"}))
    )
    (tmp_path / "prefect.json").write_text(
        json.dumps(results("prefect", theirs, skipped={"lateness.one": "not on this version"}))
    )
    done = bench("report.py", "--results", str(tmp_path), timeout=60)
    assert done.returncode == 0, done.stderr
    rows = {row["key"]: row for row in json.loads((tmp_path / "report.json").read_text())["rows"]}
    assert rows["adhoc.latency"]["met"] is True
    assert rows["adhoc.latency"]["dockyard_vs_prefect"] == pytest.approx(0.01)
    assert rows["adhoc.rate4"]["ratio_to_floor"] == pytest.approx(0.5)
    assert rows["adhoc.rate4"]["met"] is False
    assert rows["adhoc.rate4"]["dockyard_vs_prefect"] == pytest.approx(100)
    assert rows["lateness.one"]["met"] is True
    assert rows["floor.spawn"]["met"] is None  # a floor has no target

    lines = (tmp_path / "report.md").read_text().splitlines()
    assert "| Prefect | dockyard / Prefect |" in lines[0]
    rate = next(line for line in lines if "(`adhoc.rate4`)" in line)
    assert "50.0 runs/s" in rate and "0.50×" in rate and "**not met**" in rate
    assert "100.00×" in rate  # dockyard / Prefect
    assert "skipped" in next(line for line in lines if "(`lateness.one`)" in line)
    assert "failed" in next(line for line in lines if "(`idle.cpu_1000`)" in line)
    assert "- `lateness.one` (Prefect): not on this version" in lines
    assert any(line.startswith("Prefect 9.9: Linux, 2 CPUs") for line in lines)


def test_report_without_dockyard_results_says_what_to_run(tmp_path: Path) -> None:
    done = bench("report.py", "--results", str(tmp_path), timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("bench failed: no ") and "bench/suite.py" in done.stderr


def test_plots_draw_what_the_results_hold(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the bench extra: pip install -e '.[bench]'")
    rate = entry(50.0, "runs/s", "rate")
    rate["series"] = {"x": [1, 2, 4, 8], "y": [20.0, 35.0, 50.0, 55.0]}
    ours = {"floor.spawn": entry(0.02, "s"), "adhoc.rate4": rate,
            "lateness.one": {**entry(0.03, "s", "p99"), "samples": [0.01, 0.02, 0.03]}}  # fmt: skip
    (tmp_path / "dockyard.json").write_text(json.dumps(results("dockyard", ours)))
    done = bench("plots.py", "--results", str(tmp_path), timeout=120)
    assert done.returncode == 0, done.stderr
    for name in ("lateness", "throughput"):
        assert (tmp_path / f"{name}.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), name
    assert not (tmp_path / "memory.png").exists()  # no memory.runs series: no plot
    assert "memory.png: no data" in done.stderr
