"""Human tables (rich) and JSON for the CLI: one renderer per resource.

Every renderer takes the API-shaped dicts a ``dockyard.cli.readers.Reader`` returns (the
JSON of ``dockyard.web.schemas`` models), whichever mode read them; with ``as_json`` it
prints them unchanged, so ``--json`` is the same for ``--url`` and ``--state``.

Tables colour states (Failed red, Running blue, Completed green …) when stdout is a
terminal, and not when it is piped or ``NO_COLOR`` is set (rich's ``Console`` reads
``NO_COLOR`` and ``FORCE_COLOR``); no line ends in blanks. Times are UTC, with the date
when it is not today, and to the millisecond in a run's state history.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from dockyard.core.schedules import SCHEDULE_KINDS

console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
Item = Mapping[str, Any]
REVISION_CHARS = 12
"""How much of a git revision the replica table shows (as ``git log --oneline`` would)."""
SHOWN_DEPLOYMENTS = 3
"""How many deployment names a replica's row lists before "(+N)"."""
STYLES = {
    "Failed": "red",
    "Crashed": "red",
    "Running": "blue",
    "Completed": "green",
    "Cached": "green",
    "Cancelled": "yellow",
    "Cancelling": "yellow",
    "Scheduled": "cyan",
    "Pending": "cyan",
    "NotReady": "cyan",
    "active": "green",
    "paused": "yellow",
    "not served": "bright_black",
    "live": "green",
    "lost": "red",
    "stopped": "bright_black",
}
"""The colour of a state (of a run, task run, deployment or replica): colours only, so that
``NO_COLOR`` leaves no styling at all."""
NOT_SERVED = "not served"
_HEADER = "" if console.no_color else "bold"
_TRAILING = re.compile(r"(?:[ \t]|\x1b\[[0-9;]*m)+$")
_CODES = re.compile(r"\x1b\[[0-9;]*m")


def print_json(value: Any) -> None:
    """``value`` (JSON data) indented, for scripts."""
    print(json.dumps(value, indent=2, default=str))


def deployments(items: Sequence[Item], *, as_json: bool, every: bool = False) -> None:
    """A table of deployments (``DeploymentSummary``): those served, ``every`` one with
    those no serve process serves any more (STATUS ``not served``)."""
    shown = [d for d in items if every or d.get("served", True)]
    if as_json:
        print_json(shown)
        return
    table = _table("DEPLOYMENT", "SCHEDULE", "STATUS", "NEXT RUN (UTC)", "TAGS")
    for d in shown:
        tags = ", ".join(d.get("tags") or []) or "-"
        table.add_row(
            Text(d["name"]), Text(_schedules(d)), _styled(_deployment_status(d)),
            _when_text(d.get("next_run")), Text(tags),
        )  # fmt: skip
    _print(table)
    hidden = len(items) - len(shown)
    if hidden:
        print(
            f"({hidden} deployment(s) no serve process serves any more not shown: --all "
            "lists them, 'dockyard deployment rm NAME' removes one)",
            file=sys.stderr,
        )


def deployment_removed(item: Item, *, as_json: bool) -> None:
    """What ``deployment rm`` removed (``DeploymentRemoved``)."""
    if as_json:
        print_json(item)
    else:
        _say(f"removed {item['name']} and its {item['runs']} run(s)")


def deployment_changed(item: Item, *, as_json: bool) -> None:
    """A paused or resumed deployment (``DeploymentSummary``): its name and status."""
    if as_json:
        print_json(item)
    else:
        _print(Text.assemble(f"{item['name']}: ", _styled(_deployment_status(item))))


def deployment_detail(item: Item, *, as_json: bool) -> None:
    """One deployment (``DeploymentDetail``), a field per line."""
    if as_json:
        print_json(item)
        return
    rows = [
        ("name", item["name"]),
        ("entrypoint", item.get("entrypoint") or "-"),
        ("status", _styled(_deployment_status(item))),
        ("schedules", _schedules(item)),
        ("next runs", ", ".join(_when_text(t) for t in item.get("next_runs") or []) or "-"),
        ("parameters", _parameter_summary(item)),
        ("tags", ", ".join(item.get("tags") or []) or "-"),
        ("description", item.get("description") or "-"),
        ("version", item.get("version") or "-"),
        ("limit", item.get("concurrency_limit") or "-"),
        ("overlap", item.get("overlap") or "-"),
        ("catchup", item.get("catchup") or "-"),
        ("last run", _last_run(item.get("last_run"))),
    ]
    _fields(rows, width=12)


def runs(items: Sequence[Item], *, as_json: bool) -> None:
    """A table of runs (``RunSummary``), in the order given."""
    if as_json:
        print_json(list(items))
        return
    table = _table("ID", "DEPLOYMENT", "NAME", "STATE", "SCHEDULED (UTC)", "DURATION")
    for run in items:
        table.add_row(
            run["id"][:8],
            Text(run["deployment"]),
            Text(run.get("name") or "-"),
            _styled(run["state"]),
            _when_text(run.get("scheduled_at")),
            _duration(run.get("duration_seconds")),
        )
    _print(table)


def run_detail(run: Item, *, as_json: bool) -> None:
    """One run (``RunDetail``), a field per line, then its state history and task runs."""
    if as_json:
        print_json(run)
        return
    message = run.get("state_message")
    rows = [
        ("id", run["id"]),
        ("deployment", run["deployment"]),
        ("name", run.get("name") or "-"),
        ("state", Text.assemble(_styled(run["state"]), f": {message}" if message else "")),
        ("trigger", run["trigger"]),
        ("tags", ", ".join(run.get("tags") or []) or "-"),
        ("attempt", f"{run['attempt']} (retries allowed: {run.get('retries', 0)})"),
        ("parameters", json.dumps(run.get("parameters") or {}, default=str)),
        ("scheduled", _when_text(run.get("scheduled_at"))),
        ("started", _when_text(run.get("started_at"))),
        ("ended", _when_text(run.get("ended_at"))),
        ("error", run.get("error") or "-"),
        ("result", run.get("result_repr") or _json_or_dash(run.get("result"))),
    ]
    if run.get("replica"):
        version = run.get("dockyard_version")
        revision = (run.get("code_revision") or "")[:REVISION_CHARS]
        ran = run["replica"] + (f" (dockyard {version})" if version else "")
        rows.append(("ran on", ran + (f" at revision {revision}" if revision else "")))
    _fields(rows, width=11)
    _say("history")
    for event in run.get("history") or []:
        note = f"  {event['message']}" if event.get("message") else ""
        at = _when_text(event["at"], precise=True)
        _print(Text.assemble(f"  {at}  ", _styled(event["state"]), note))
    task_runs(run.get("task_runs") or [])


def _json_or_dash(value: Any) -> str:
    return "-" if value is None else json.dumps(value, ensure_ascii=False)


def task_runs(items: Sequence[Item]) -> None:
    """A run's task runs (``TaskRunOut``) as a table; an error shows its last line."""
    if not items:
        _say("task runs  -")
        return
    _say("task runs")
    table = _table("  NAME", "STATE", "ATTEMPTS", "DURATION", "CACHED", "ERROR")
    for task in items:
        table.add_row(
            Text(f"  {task['name']}"),  # Text: what flow code wrote is never rich markup
            _styled(task["state"]),
            str(task["attempts"]),
            _duration(task.get("duration_seconds")),
            "yes" if task.get("cache_hit") else "no",
            Text(_last_line(task.get("error"))),
        )
    _print(table)


def log_lines(items: Sequence[Item], *, as_json: bool) -> None:
    """A run's stored output lines (``LogLineOut``): the text of each, or the JSON list."""
    if as_json:
        print_json(list(items))
        return
    for item in items:
        print(item["line"])


def replicas(items: Sequence[Item], *, as_json: bool, now: datetime | None = None) -> None:
    """A table of the replicas sharing a database (``ReplicaOut``); ``LAST SEEN`` is the
    age of each one's last heartbeat at ``now`` (this machine's clock)."""
    if as_json:
        print_json(list(items))
        return
    now = now or datetime.now(UTC)
    table = _table("ID", "HOST", "VERSION", "REVISION", "STATE", "LAST SEEN", "RUNS", "DEPLOYMENTS")
    for r in items:
        table.add_row(
            Text(r["id"]),  # Text: hostnames and names are never rich markup
            Text(r["host"]),
            Text(r["version"]),
            (r.get("code_revision") or "-")[:REVISION_CHARS],
            _styled(r["state"]),
            _age(datetime.fromisoformat(r["last_seen"]), now),
            str(r["runs_held"]),
            Text(_some(r.get("deployments") or [])),
        )
    _print(table)


def _age(at: datetime, now: datetime) -> str:
    """``4s ago``, ``3m ago``, ``2h ago``, ``5d ago`` (``0s ago`` for a clock behind)."""
    seconds = max(int((now - at).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _some(names: Sequence[str]) -> str:
    """The first few names, and how many more: ``a, b, c (+2)``."""
    shown = ", ".join(names[:SHOWN_DEPLOYMENTS]) or "-"
    more = len(names) - SHOWN_DEPLOYMENTS
    return f"{shown} (+{more})" if more > 0 else shown


def stream_item(item: Item, *, as_json: bool) -> None:
    """One item of a followed log stream, printed as soon as it arrives."""
    if as_json:
        print(json.dumps(item), flush=True)
    elif "line" in item:  # not the end marker (nor anything a newer server may add)
        print(item["line"], flush=True)


def check_report(deployments: Sequence[Any]) -> None:
    """What ``dockyard serve --check`` prints: deployments and their next fire times."""
    from dockyard.core.schedules import upcoming
    from dockyard.service.setup import CHECK_UPCOMING

    now = datetime.now(UTC)
    for d in deployments:
        _say(f"{d.full_name}  ({d.entrypoint})")
        _say(f"  schedules: {_schedules(d.spec())}")
        times = [_when(t) for t in upcoming(d.schedules, now, CHECK_UPCOMING)]
        _say(f"  next runs (UTC): {', '.join(times) or '-'}")
        if d.parameters:
            _say(f"  parameters: {json.dumps(dict(d.parameters), default=str)}")
        if d.paused:
            _say("  starts paused")
    _say(f"ok: {len(deployments)} deployment(s) valid")


def check_json(deployments: Sequence[Any]) -> None:
    """What ``dockyard serve --check --json`` prints: ``{"ok": true, "deployments": [...]}``,
    each deployment's stored spec with ``name`` (flow/deployment) and ``next_runs``."""
    from dockyard.service.setup import check_entry

    now = datetime.now(UTC)
    print_json({"ok": True, "deployments": [check_entry(d, now) for d in deployments]})


def _table(*headers: str) -> Table:
    return Table(*headers, box=None, header_style=_HEADER)


def _print(renderable: RenderableType) -> None:
    """Print ``renderable`` with no blanks at the end of its lines (rich pads table cells
    to the column width, the last column included)."""
    with console.capture() as captured:
        console.print(renderable)
    lines = captured.get().splitlines()
    sys.stdout.write("".join(_rstrip(line) + "\n" for line in lines))
    sys.stdout.flush()


def _rstrip(line: str) -> str:
    """``line`` without trailing blanks, keeping the escape codes among them (a reset)."""
    tail = _TRAILING.search(line)
    if tail is None:
        return line
    return line[: tail.start()] + "".join(_CODES.findall(tail.group()))


def _styled(state: str) -> Text:
    """A state's name in its colour (``paused (user)`` in the colour of ``paused``)."""
    return Text(state, style=STYLES.get(state.partition(" (")[0], ""))


def _deployment_status(item: Item) -> str:
    if not item.get("served", True):
        return NOT_SERVED
    return _status(item["paused"], item.get("paused_reason"))


def _say(text: str) -> None:
    _print(Text(text))


def _fields(rows: Sequence[tuple[str, Any]], *, width: int) -> None:
    for key, value in rows:
        _print(Text.assemble(f"{key:<{width}} ", value if isinstance(value, Text) else str(value)))


def _when(value: datetime | None, *, precise: bool = False) -> str:
    """``14:03:07`` today (UTC), ``2026-01-31 14:03:07`` on another day; ``precise`` adds
    milliseconds (``14:03:07.123``)."""
    if value is None:
        return "-"
    at = value.astimezone(UTC)
    text = at.strftime("%H:%M:%S" if at.date() == datetime.now(UTC).date() else "%Y-%m-%d %H:%M:%S")
    return f"{text}.{at.microsecond // 1000:03d}" if precise else text


def _when_text(value: str | None, *, precise: bool = False) -> str:
    return _when(datetime.fromisoformat(value), precise=precise) if value else "-"


def _last_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else "-"


def _duration(seconds: float | None) -> str:
    return f"{seconds:.1f}s" if seconds is not None else "-"


def _status(paused: bool, reason: str | None) -> str:
    if not paused:
        return "active"
    return f"paused ({reason})" if reason else "paused"


def _schedules(item: Item) -> str:
    """``cron 0 * * * * (Europe/Berlin) [daily] with day='x', every 60s (inactive)``."""
    parts = []
    for s in item.get("schedules") or []:
        kind = next((k for k in SCHEDULE_KINDS if k in s), "?")
        value = s.get(kind)
        text = f"every {value:g}s" if kind == "interval" else f"{kind} {value}"
        tz = s.get("timezone")
        text += f" ({tz})" if tz and tz != "UTC" else ""
        text += f" [{s['slug']}]" if s.get("slug") else ""
        if s.get("parameters"):
            text += " with " + " ".join(f"{k}={v!r}" for k, v in s["parameters"].items())
        parts.append(text + (" (inactive)" if s.get("active") is False else ""))
    return ", ".join(parts) or "-"


def _last_run(run: Item | None) -> str:
    return f"{run['id'][:8]} {run['state']} {_when_text(run['scheduled_at'])}" if run else "-"


def _parameter_summary(item: Item) -> str:
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
