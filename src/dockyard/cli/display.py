"""Human tables (rich) and JSON for the CLI's read commands."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def plain(value: Any) -> Any:
    """Records, enums and datetimes as JSON-ready data."""
    return _plain(value)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def print_json(value: Any) -> None:
    print(json.dumps(_plain(value), indent=2, default=str))


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _schedules(spec: dict[str, Any]) -> str:
    parts = []
    for s in spec.get("schedules") or []:
        kind = next((k for k in ("cron", "interval", "rrule") if k in s), "?")
        value = s.get(kind)
        text = f"every {value:g}s" if kind == "interval" else f"{kind} {value}"
        tz = s.get("timezone")
        parts.append(text + (f" ({tz})" if tz and tz != "UTC" else ""))
    return ", ".join(parts) or "-"


def _paused(record: Any) -> str:
    return _status(record.paused, record.paused_reason)


def _status(paused: bool, reason: str | None) -> str:
    if not paused:
        return "active"
    return f"paused ({reason})" if reason else "paused"


def deployments(records: Sequence[Any], *, as_json: bool) -> None:
    if as_json:
        print_json(list(records))
        return
    table = Table("DEPLOYMENT", "SCHEDULE", "STATUS", "TAGS", box=None, pad_edge=False)
    for record in records:
        tags = ", ".join(record.spec.get("tags") or [])
        table.add_row(record.name, _schedules(record.spec), _paused(record), tags or "-")
    console.print(table)


def deployment_changed(record: Any, *, as_json: bool) -> None:
    if as_json:
        print_json(record)
    else:
        console.print(f"{record.name}: {_paused(record)}")


def runs(records: Sequence[Any], *, as_json: bool) -> None:
    if as_json:
        print_json(list(records))
        return
    table = Table("ID", "DEPLOYMENT", "NAME", "STATE", "SCHEDULED (UTC)", "DURATION", box=None)
    for run in records:
        duration = f"{run.duration_seconds:.1f}s" if run.duration_seconds is not None else "-"
        table.add_row(
            run.id[:8],
            run.deployment,
            run.name or "-",
            run.state.value,
            _when(run.scheduled_at),
            duration,
        )
    console.print(table)


def run_detail(run: Any, history: Sequence[Any], *, as_json: bool) -> None:
    if as_json:
        print_json({**_plain(run), "history": _plain(list(history))})
        return
    rows = [
        ("id", run.id),
        ("deployment", run.deployment),
        ("name", run.name or "-"),
        ("state", run.state.value + (f": {run.state_message}" if run.state_message else "")),
        ("trigger", run.trigger),
        ("attempt", f"{run.attempt} (retries allowed: {run.retries})"),
        ("parameters", json.dumps(run.parameters, default=str)),
        ("scheduled", _when(run.scheduled_at)),
        ("started", _when(run.started_at)),
        ("ended", _when(run.ended_at)),
        ("error", run.error or "-"),
        ("result", run.result or "-"),
    ]
    for key, value in rows:
        console.print(f"{key:<11} {value}", markup=False)
    console.print("history", markup=False)
    for event in history:
        message = f"  {event.message}" if event.message else ""
        console.print(f"  {_when(event.at)}  {event.state.value}{message}", markup=False)


def logs(lines: Sequence[Any], *, as_json: bool) -> None:
    if as_json:
        print_json(list(lines))
        return
    for line in lines:
        print(line.line)


def check_report(deployments: Sequence[Any]) -> None:
    """What ``dockyard serve --check`` prints: deployments and their next fire times."""
    from dockyard.core.schedules import next_fire

    now = datetime.now(UTC)
    for d in deployments:
        console.print(f"{d.full_name}  ({d.entrypoint})", markup=False)
        console.print(f"  schedules: {_schedules(d.spec())}", markup=False)
        times, point = [], now
        for _ in range(3):
            t = next_fire(d.schedules, point)
            if t is None:
                break
            times.append(_when(t))
            point = t
        console.print(f"  next runs (UTC): {', '.join(times) or '-'}", markup=False)
        if d.parameters:
            console.print(
                f"  parameters: {json.dumps(dict(d.parameters), default=str)}", markup=False
            )
        if d.paused:
            console.print("  starts paused", markup=False)
    console.print(f"ok: {len(deployments)} deployment(s) valid", markup=False)


# ── the HTTP API's JSON (``--url``): dicts as the server sends them ─────────────────────


def _when_text(value: str | None) -> str:
    return _when(datetime.fromisoformat(value)) if value else "-"


def _duration(seconds: float | None) -> str:
    return f"{seconds:.1f}s" if seconds is not None else "-"


def api_deployments(items: Sequence[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        print_json(list(items))
        return
    table = Table("DEPLOYMENT", "SCHEDULE", "STATUS", "NEXT RUN (UTC)", "TAGS", box=None)
    for d in items:
        status = _status(d["paused"], d.get("paused_reason"))
        tags = ", ".join(d.get("tags") or []) or "-"
        table.add_row(d["name"], _schedules(d), status, _when_text(d.get("next_run")), tags)
    console.print(table)


def api_deployment_changed(item: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json(item)
    else:
        console.print(f"{item['name']}: {_status(item['paused'], item.get('paused_reason'))}")


def deployment_detail(item: dict[str, Any], *, as_json: bool) -> None:
    """One deployment (API ``DeploymentDetail`` shape; local mode leaves some keys out)."""
    if as_json:
        print_json(item)
        return
    last = item.get("last_run")
    rows = [
        ("name", item["name"]),
        ("entrypoint", item.get("entrypoint") or "-"),
        ("status", _status(item["paused"], item.get("paused_reason"))),
        ("schedules", _schedules(item)),
        ("next runs", ", ".join(_when_text(t) for t in item.get("next_runs") or []) or "-"),
        ("parameters", _parameter_summary(item)),
        ("tags", ", ".join(item.get("tags") or []) or "-"),
        ("description", item.get("description") or "-"),
        ("version", item.get("version") or "-"),
        ("limit", item.get("concurrency_limit") or "-"),
        ("overlap", item.get("overlap") or "-"),
        ("catchup", item.get("catchup") or "-"),
        (
            "last run",
            f"{last['id'][:8]} {last['state']} {_when_text(last['scheduled_at'])}" if last else "-",
        ),
    ]
    for key, value in rows:
        console.print(f"{key:<12} {value}", markup=False)


def _parameter_summary(item: dict[str, Any]) -> str:
    """``name: type = default`` per parameter, the deployment's defaults over the flow's."""
    properties = (item.get("parameter_schema") or {}).get("properties") or {}
    defaults = item.get("parameters") or {}
    parts = []
    for name, prop in properties.items():
        text = f"{name}: {prop.get('type', 'any')}"
        if name in defaults:
            text += f" = {json.dumps(defaults[name], default=str)}"
        elif "default" in prop:
            text += f" = {json.dumps(prop['default'], default=str)}"
        parts.append(text)
    parts += [
        f"{k} = {json.dumps(v, default=str)}" for k, v in defaults.items() if k not in properties
    ]
    return ", ".join(parts) or "-"


def api_runs(items: Sequence[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        print_json(list(items))
        return
    table = Table("ID", "DEPLOYMENT", "NAME", "STATE", "SCHEDULED (UTC)", "DURATION", box=None)
    for run in items:
        table.add_row(
            run["id"][:8],
            run["deployment"],
            run.get("name") or "-",
            run["state"],
            _when_text(run.get("scheduled_at")),
            _duration(run.get("duration_seconds")),
        )
    console.print(table)


def api_run_detail(run: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json(run)
        return
    message = run.get("state_message")
    rows = [
        ("id", run["id"]),
        ("deployment", run["deployment"]),
        ("name", run.get("name") or "-"),
        ("state", run["state"] + (f": {message}" if message else "")),
        ("trigger", run["trigger"]),
        ("attempt", f"{run['attempt']} (retries allowed: {run.get('retries', 0)})"),
        ("parameters", json.dumps(run.get("parameters") or {}, default=str)),
        ("scheduled", _when_text(run.get("scheduled_at"))),
        ("started", _when_text(run.get("started_at"))),
        ("ended", _when_text(run.get("ended_at"))),
        ("error", run.get("error") or "-"),
        ("result", run.get("result") or "-"),
    ]
    for key, value in rows:
        console.print(f"{key:<11} {value}", markup=False)
    console.print("history", markup=False)
    for event in run.get("history") or []:
        note = f"  {event['message']}" if event.get("message") else ""
        console.print(f"  {_when_text(event['at'])}  {event['state']}{note}", markup=False)


def api_log_lines(items: Sequence[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        print_json(list(items))
        return
    for item in items:
        print(item["line"])


def stream_item(item: dict[str, Any], *, as_json: bool) -> None:
    """One item of a followed log stream, printed as soon as it arrives."""
    if as_json:
        print(json.dumps(item), flush=True)
    elif "line" in item:  # not the end marker (nor anything a newer server may add)
        print(item["line"], flush=True)
