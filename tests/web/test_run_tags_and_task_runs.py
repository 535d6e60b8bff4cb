"""A run's tags and task runs through the real app over a started service (real SQLite).

``serving`` (tests/web/conftest.py) starts no scheduling loop: a run the API creates stays
Pending, and its task runs are written through the service's store, as the supervisor does.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dockyard.core.records import TaskRunRecord
from dockyard.web.schemas import RunDetail, RunSummary, TaskRunOut
from tests.web.conftest import JSON, RUNS, serving

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TOKEN = "web-token-4f2a"
AUTH = {"Authorization": f"Bearer {TOKEN}", **JSON}


def test_an_ad_hoc_run_gets_the_tags_it_is_given_and_shows_them(tmp_path):
    async def go() -> None:
        async with serving(tmp_path) as served:
            created = await served.client.post(RUNS, json={"tags": ["etl", "b", "etl"]})
            assert created.status_code == 201, created.text
            body = created.json()
            assert (body["tags"], body["task_runs"]) == (["etl", "b"], [])
            plain = await served.client.post(RUNS, json={})
            assert plain.json()["tags"] == []
            listed = (await served.client.get("/api/runs")).json()["runs"]
            assert {r["id"]: r["tags"] for r in listed} == {
                body["id"]: ["etl", "b"],
                plain.json()["id"]: [],
            }
            assert set(listed[0]) == set(RunSummary.model_fields)

    asyncio.run(go())


BAD_TAGS: list[tuple[Any, list[Any], str]] = [
    ([""], ["body", "tags", 0], "string_too_short"),
    (["x" * 101], ["body", "tags", 0], "string_too_long"),
    (["ok", "tab\there"], ["body", "tags", 1], "value_error"),
    (["new\nline"], ["body", "tags", 0], "value_error"),
    (["\u0085"], ["body", "tags", 0], "value_error"),  # a C1 control character
    ([f"t{i}" for i in range(51)], ["body", "tags"], "too_long"),
    ("etl", ["body", "tags"], "list_type"),
    ([7], ["body", "tags", 0], "string_type"),
]


@pytest.mark.parametrize(("tags", "loc", "kind"), BAD_TAGS)
def test_bad_tags_are_422_naming_the_tag_and_create_nothing(tmp_path, tags, loc, kind):
    async def go() -> None:
        async with serving(tmp_path) as served:
            answer = await served.client.post(RUNS, json={"tags": tags})
            assert answer.status_code == 422, answer.text
            [error] = answer.json()["errors"]
            assert (error["loc"], error["type"]) == (loc, kind)
            assert "tags" in answer.json()["detail"]
            assert await served.run_count() == 0

    asyncio.run(go())


def test_fifty_tags_of_a_hundred_characters_are_fine(tmp_path):
    tags = [f"{i:02d}" + "é" * 98 for i in range(50)]

    async def go() -> None:
        async with serving(tmp_path) as served:
            answer = await served.client.post(RUNS, json={"tags": tags})
            assert answer.status_code == 201, answer.text
            assert answer.json()["tags"] == tags

    asyncio.run(go())


def test_patch_replaces_the_tags_of_a_run(tmp_path):
    async def go() -> None:
        async with serving(tmp_path) as served:
            run_id = (await served.client.post(RUNS, json={"tags": ["old"]})).json()["id"]
            answer = await served.client.patch(f"/api/runs/{run_id}", json={"tags": ["new", "x"]})
            assert answer.status_code == 200, answer.text
            assert answer.json()["tags"] == ["new", "x"]
            assert set(answer.json()) == set(RunDetail.model_fields)
            shown = (await served.client.get(f"/api/runs/{run_id}")).json()
            assert shown["tags"] == ["new", "x"]
            by_prefix = await served.client.patch(f"/api/runs/{run_id[:8]}", json={"tags": []})
            assert (by_prefix.json()["id"], by_prefix.json()["tags"]) == (run_id, [])
            untouched = await served.client.patch(f"/api/runs/{run_id}", json={})
            assert untouched.status_code == 200 and untouched.json()["tags"] == []

    asyncio.run(go())


@pytest.mark.parametrize(
    ("body", "status", "loc"),
    [
        ({"tags": ["\x00"]}, 422, ["body", "tags", 0]),
        ({"tags": ["ok"], "state": "Completed"}, 422, ["body", "state"]),
        (None, 422, ["body"]),
    ],
)
def test_a_bad_patch_is_422_and_changes_nothing(tmp_path, body, status, loc):
    async def go() -> None:
        async with serving(tmp_path) as served:
            run_id = (await served.client.post(RUNS, json={"tags": ["kept"]})).json()["id"]
            answer = await served.client.patch(f"/api/runs/{run_id}", json=body, headers=JSON)
            assert answer.status_code == status, answer.text
            assert answer.json()["errors"][0]["loc"] == loc
            assert (await served.client.get(f"/api/runs/{run_id}")).json()["tags"] == ["kept"]

    asyncio.run(go())


def test_patching_an_unknown_run_is_404(tmp_path):
    async def go() -> None:
        async with serving(tmp_path) as served:
            answer = await served.client.patch("/api/runs/ffffffffffff", json={"tags": ["x"]})
            assert answer.status_code == 404, answer.text
            assert "unknown run 'ffffffffffff'" in answer.json()["detail"]

    asyncio.run(go())


def test_patch_needs_the_token_like_every_mutating_call(tmp_path):
    async def go() -> None:
        async with serving(tmp_path, token=TOKEN) as served:
            created = await served.client.post(RUNS, json={"tags": ["a"]}, headers=AUTH)
            run_id = created.json()["id"]
            path = f"/api/runs/{run_id}"
            refused = await served.client.patch(path, json={"tags": ["b"]}, headers=JSON)
            assert refused.status_code == 401, refused.text
            wrong = {**AUTH, "Authorization": "Bearer nope"}
            assert (
                await served.client.patch(path, json={"tags": ["b"]}, headers=wrong)
            ).status_code == 401
            assert (await served.client.get(path)).json()["tags"] == ["a"]
            allowed = await served.client.patch(path, json={"tags": ["b"]}, headers=AUTH)
            assert (allowed.status_code, allowed.json()["tags"]) == (200, ["b"])

    asyncio.run(go())


def test_a_run_shows_its_task_runs_in_the_order_they_started(tmp_path):
    async def go() -> None:
        async with serving(tmp_path) as served:
            run_id = (await served.client.post(RUNS, json={})).json()["id"]
            failed = TaskRunRecord(
                "b", run_id, "load-0", "load", "Failed", attempts=3, started_at=T0,
                ended_at=T0 + timedelta(seconds=2.5), error="Traceback\nValueError: bad row",
            )  # fmt: skip
            cached = TaskRunRecord(
                "a", run_id, "extract-0", "extract", "Cached", started_at=T0 - timedelta(1),
                ended_at=T0 - timedelta(1), cache_hit=True, flow_attempt=1,
            )  # fmt: skip
            waiting = TaskRunRecord("c", run_id, "save-0", "save", "Pending")
            await served.store.save_task_runs(run_id, [failed, waiting, cached])

            shown = (await served.client.get(f"/api/runs/{run_id}")).json()
            assert [t["id"] for t in shown["task_runs"]] == ["a", "b", "c"]
            assert shown["task_runs"][1] == {
                "id": "b",
                "name": "load-0",
                "task_key": "load",
                "state": "Failed",
                "attempts": 3,
                "started_at": "2024-05-01T12:00:00Z",
                "ended_at": "2024-05-01T12:00:02.500000Z",
                "duration_seconds": 2.5,
                "error": "Traceback\nValueError: bad row",
                "cache_hit": False,
                "flow_attempt": 1,
            }
            assert set(shown["task_runs"][2]) == set(TaskRunOut.model_fields)
            assert shown["task_runs"][2]["duration_seconds"] is None
            assert shown["task_runs"][0]["cache_hit"] is True
            listed = (await served.client.get("/api/runs")).json()["runs"]
            assert "task_runs" not in listed[0]  # the list stays light

    asyncio.run(go())


def test_the_openapi_schema_documents_tags_task_runs_and_patch(tmp_path):
    async def go() -> None:
        async with serving(tmp_path) as served:
            schema = (await served.client.get("/openapi.json")).json()
            patch = schema["paths"]["/api/runs/{run_id}"]["patch"]
            assert {"401", "403", "404", "422"} <= set(patch["responses"])
            components = schema["components"]["schemas"]
            assert "task_runs" in components["RunDetail"]["properties"]
            assert "tags" in components["RunSummary"]["properties"]
            tags = components["CreateRun"]["properties"]["tags"]["anyOf"][0]
            assert (tags["maxItems"], tags["items"]["minLength"], tags["items"]["maxLength"]) == (
                50,
                1,
                100,
            )

    asyncio.run(go())
