"""The shipped alert rules and Grafana dashboard, checked without a Prometheus server.

``promtool`` (Debian's, as .ci/run installs it) checks the rule file and runs its unit
tests (docker/prometheus/alerts.test.yml) and lints the metrics page of a real app; the
dashboard JSON is checked for what Grafana and its users rely on, and every query in
it, and in the rules, names metrics dockyard exports. tests/e2e/test_monitoring.py runs
the same rules and queries against a real Prometheus scraping a real serve process.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard.metrics import Metrics
from tests.helpers import REPO, require_prometheus_tool

PROMTOOL = Path("/usr/bin/promtool")
PROMETHEUS_DIR = REPO / "docker" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERT_TESTS = PROMETHEUS_DIR / "alerts.test.yml"
GRAFANA = REPO / "docker" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "dockyard.json"
DATASOURCE_UIDS = {"prometheus", "${datasource}"}
SUBSTITUTIONS = {
    "$__rate_interval": "15s",
    "$__interval": "5s",
    "$__range": "1m",
    "$deployment": ".*",
    "$instance": ".*",
}
"""What Grafana would put in place of its variables, for a query run by hand."""
SEVERITIES = {"warning", "critical"}


# ── shared with tests/e2e/test_monitoring.py ───────────────────────────────────────────
def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included; rows themselves left out."""
    found: list[dict[str, Any]] = []
    for panel in board["panels"]:
        if panel.get("type") == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def substituted(expr: str) -> str:
    # Longest names first: $__range must not eat the start of a longer variable.
    for name in sorted(SUBSTITUTIONS, key=len, reverse=True):
        expr = expr.replace(name, SUBSTITUTIONS[name])
    assert "$" not in expr, f"a Grafana variable left in {expr!r}"
    return expr


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title and refId, PromQL with the variables substituted) of every target."""
    return [
        (f"{panel['title']} {target['refId']}", substituted(target["expr"]))
        for panel in panels(dashboard())
        for target in panel["targets"]
    ]


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def promtool(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROMTOOL), *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROMETHEUS_DIR,
    )


@pytest.fixture
def promtool_binary() -> Path:
    return require_prometheus_tool(PROMTOOL)


# ── alert rules ─────────────────────────────────────────────────────────────────────────
def test_promtool_checks_the_rules(promtool_binary: Path) -> None:
    done = promtool("check", "rules", ALERTS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


def test_promtool_unit_tests_of_the_rules_pass(promtool_binary: Path) -> None:
    done = promtool("test", "rules", ALERT_TESTS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    tests = yaml.safe_load(ALERT_TESTS.read_text())
    assert tests["rule_files"] == ["alerts.yml"]
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
            for alert in check["exp_alerts"]:
                assert set(alert["exp_annotations"]) == {"summary", "description"}, check
                assert alert["exp_labels"]["severity"] in SEVERITIES, check
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fires == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested staying quiet"


def test_every_alert_has_for_severity_summary_and_a_templated_description() -> None:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    assert [g["name"] for g in groups] == ["dockyard"]
    rules = alert_rules()
    assert len(rules) >= 12
    for rule in rules:
        name = rule["alert"]
        assert re.fullmatch(r"Dockyard[A-Z][A-Za-z]+", name), name
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert set(rule["annotations"]) == {"summary", "description"}, name
        assert rule["annotations"]["summary"].strip(), name
        # absent() has no labels to name; every other alert says which thing it is about
        if not rule["expr"].startswith("absent("):
            assert "{{ $labels." in rule["annotations"]["description"], name
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))


def test_the_up_rules_match_the_compose_and_the_chart_job_names() -> None:
    """compose's job is `dockyard`; the chart's ServiceMonitor job is `<release>-dockyard`."""
    selectors = {
        found for rule in alert_rules() for found in re.findall(r'up\{job=~"([^"]+)"', rule["expr"])
    }
    assert len(selectors) == 1, selectors
    [selector] = selectors
    for job in ("dockyard", "prod-dockyard", "dockyard-dockyard"):
        assert re.fullmatch(selector, job), job
    assert not re.fullmatch(selector, "node-exporter")


# ── metric names ────────────────────────────────────────────────────────────────────────
SAMPLE_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}


def exported_names() -> set[str]:
    """Every sample name a serve process's registry exports (a family with labels has
    no samples until a label set is used: its names come from its type)."""
    metrics = Metrics()
    metrics.runner.limit = 1  # the run-limit series exist only under a limit
    families = list(metrics.registry.collect())
    return {sample.name for family in families for sample in family.samples} | {
        family.name + suffix
        for family in families
        for suffix in SAMPLE_SUFFIXES.get(family.type, ("",))
    }


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_queried_metric_is_one_dockyard_exports(source: str) -> None:
    if source == "alerts":
        exprs = [rule["expr"] for rule in alert_rules()]
    else:
        exprs = [query for _, query in dashboard_queries()]
    used = {name for expr in exprs for name in re.findall(r"\b((?:dockyard|process)_\w+)", expr)}
    assert used, exprs
    assert used - exported_names() == set()


# ── the dashboard ───────────────────────────────────────────────────────────────────────
def test_the_dashboard_has_its_uid_title_and_variables() -> None:
    board = dashboard()
    assert (board["uid"], board["title"]) == ("dockyard", "dockyard")
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert set(variables) == {"datasource", "deployment", "instance"}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == (
        "datasource",
        "prometheus",
    )
    assert variables["datasource"]["current"]["value"] == "prometheus"  # the provisioned uid
    for name, metric_name in (
        ("deployment", "dockyard_flow_runs_in_progress"),
        ("instance", "dockyard_info"),
    ):
        variable = variables[name]
        assert variable["type"] == "query"
        assert variable["datasource"]["uid"] == "${datasource}"
        assert variable["definition"] == f"label_values({metric_name}, {name})"
        assert variable["query"]["query"] == variable["definition"]
        assert variable["includeAll"] and variable["allValue"] == ".*"


def test_every_panel_has_a_title_a_datasource_and_queries() -> None:
    board = dashboard()
    ids = [panel["id"] for panel in board["panels"]] + [
        inner["id"] for row in board["panels"] for inner in row.get("panels", [])
    ]
    assert len(ids) == len(set(ids)), "panel ids are not unique"
    found = panels(board)
    assert len(found) >= 20
    titles = [panel["title"] for panel in found]
    assert all(t.strip() for t in titles) and len(titles) == len(set(titles))
    for panel in found:
        title = panel["title"]
        assert panel["datasource"]["type"] == "prometheus", title
        assert panel["datasource"]["uid"] in DATASOURCE_UIDS, title
        assert panel["targets"], title
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), title
        for target in panel["targets"]:
            assert target["expr"].strip(), title
            assert target.get("datasource", panel["datasource"])["uid"] in DATASOURCE_UIDS
            assert '$instance"' in target["expr"], f"{title}: no $instance filter"
            for window in re.findall(r"\[([^\]]+)\]", target["expr"]):
                assert window in {"$__rate_interval", "$__range"}, f"{title}: [{window}]"


def test_panels_do_not_overlap_on_the_grid() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_deployment_queries_filter_by_the_deployment_variable() -> None:
    """A query of a metric with a ``deployment`` label honours the variable."""
    with_deployment = {
        "dockyard_flow_runs_total", "dockyard_task_runs_total", "dockyard_flow_run_duration",
        "dockyard_flow_runs_in_progress", "dockyard_schedule_lateness", "dockyard_deployment_",
        "dockyard_scheduled_runs_missed", "dockyard_schedule_next_fire",
    }  # fmt: skip
    for panel in panels(dashboard()):
        for target in panel["targets"]:
            expr = target["expr"]
            if any(name in expr for name in with_deployment):
                assert 'deployment=~"$deployment"' in expr, (panel["title"], expr)


def test_every_dashboard_query_parses(promtool_binary: Path, tmp_path: Path) -> None:
    """promtool parses each query (as a recording rule): a typo fails here, not in Grafana."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": query}
        for i, (_, query) in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = promtool("check", "rules", path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    [source] = sources["datasources"]
    assert (source["uid"], source["type"], source["url"]) == (
        "prometheus",
        "prometheus",
        "http://prometheus:9090",
    )
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/dockyard.yml").read_text())
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


# ── the metrics page itself ─────────────────────────────────────────────────────────────
def test_promtool_finds_no_problem_in_the_served_metrics_page(
    promtool_binary: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.web.conftest import serving

    for key in [k for k in os.environ if k.startswith("DOCKYARD_")]:
        monkeypatch.delenv(key)

    async def page() -> str:
        async with serving(tmp_path) as served:
            # Every kind of series present: a run ended, a pull, a lateness observation.
            metrics = served.service.metrics
            metrics.run_started("anything/d", 0.2)
            metrics.run_finished("anything/d", "Completed", 1.5)
            metrics.task_runs_ended("anything/d", ["Completed", "Failed"])
            metrics.code_sync_duration("repo", 0.1)
            metrics.code_sync("repo", "success", "c" * 40, datetime.now(UTC))
            answer = await served.client.get("/metrics")
            assert answer.status_code == 200
            return answer.text

    text = asyncio.run(page())
    assert "dockyard_ready " in text and "dockyard_code_load_failures_total{" in text
    done = promtool("check", "metrics", stdin=text)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "" and done.stderr.strip() == ""
