"""Hostile input to the real app: every bad input is a 4xx naming the field, before any write."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from dockyard.core.names import MAX_NAME_LENGTH, check_name
from dockyard.core.policies import Trigger
from dockyard.errors import UsageError
from tests.web.conftest import JSON, RUNS, serving

NAIVE_OR_OUT_OF_RANGE = [
    "2026-12-01",
    "2026-12-01T00:00:00",
    "2026-12-01T00:00:00.123456",
    "0001-01-01T00:00:00+01:00",  # year 0 in UTC
    "9999-12-31T23:59:59-01:00",  # year 10000 in UTC
]
AWARE = [
    "2026-12-01T00:00:00Z",
    "2026-12-01T00:00:00+05:30",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
]


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("field", ["since", "until"])
def test_a_time_filter_without_a_utc_offset_is_422_naming_it(tmp_path, field):
    async def go() -> None:
        async with serving(tmp_path) as served:
            for value in NAIVE_OR_OUT_OF_RANGE:
                answer = await served.client.get("/api/runs", params={field: value})
                assert answer.status_code == 422, (value, answer.text)
                assert answer.json()["errors"][0]["loc"] == ["query", field], value
                assert field in answer.json()["detail"]
            naive = await served.client.get("/api/runs", params={field: "2026-12-01"})
            assert "needs a UTC offset, e.g. 2026-12-01T00:00:00Z" in naive.json()["detail"]
            for value in AWARE:
                answer = await served.client.get("/api/runs", params={field: value})
                assert answer.status_code == 200, (value, answer.text)

    asyncio.run(go())


def test_parameters_nested_too_deep_are_422_and_no_run_is_created(tmp_path):
    async def go() -> None:
        async with serving(tmp_path) as served:
            deep = await served.client.post(RUNS, json={"parameters": {"data": nested(254)}})
            assert deep.status_code == 422, deep.text
            error = deep.json()["errors"][0]
            assert error["loc"][:3] == ["body", "parameters", "data"]
            assert error["type"] == "too_deep" and "32 levels" in error["msg"]
            assert await served.run_count() == 0
            ok = await served.client.post(RUNS, json={"parameters": {"data": nested(32)}})
            assert ok.status_code == 201, ok.text
            assert await served.run_count() == 1

    asyncio.run(go())


@pytest.mark.parametrize(
    ("parameters", "loc"),
    [
        ('{"data": "\\ud800"}', ["data"]),
        ('{"data": ["ok", "x\\udfff"]}', ["data", 1]),
        ('{"data": {"\\udc00": 1}}', ["data", "\\udc00"]),
        ('{"\\ud800name": 1}', ["\\ud800name"]),
    ],
)
def test_a_lone_surrogate_is_422_before_the_run_exists(tmp_path, parameters, loc):
    async def go() -> None:
        async with serving(tmp_path) as served:
            body = f'{{"parameters": {parameters}}}'.encode()
            answer = await served.client.post(RUNS, content=body, headers=JSON)
            assert answer.status_code == 422, answer.text
            error = answer.json()["errors"][0]
            assert error["loc"] == ["body", "parameters", *loc]
            assert error["type"] == "string_unicode" and "lone surrogate" in error["msg"]
            assert await served.run_count() == 0  # a retrying client starts nothing twice

    asyncio.run(go())


def test_a_run_stored_with_a_lone_surrogate_is_still_answered(tmp_path):
    async def go() -> None:
        async with serving(tmp_path) as served:
            deployment = served.service.catalog.get("anything/d")
            now = datetime.now(UTC)
            new = deployment.new_run({"data": "a\ud800b"}, now, Trigger.MANUAL)
            run = await served.store.create_run(new)  # as an older version stored it
            detail = await served.client.get(f"/api/runs/{run.id}")
            assert detail.status_code == 200, detail.text
            assert detail.json()["parameters"] == {"data": "a\ufffdb"}
            assert (await served.client.get("/api/runs")).status_code == 200

    asyncio.run(go())


def test_parameters_larger_than_the_limit_are_422_naming_the_largest(tmp_path):
    async def go() -> None:
        async with serving(tmp_path, max_parameter_bytes=1000) as served:
            big = {"parameters": {"data": "x" * 2000, "small": 1}}
            answer = await served.client.post(RUNS, json=big)
            assert answer.status_code == 422, answer.text
            error = answer.json()["errors"][0]
            assert error["loc"] == ["body", "parameters", "data"] and error["type"] == "too_large"
            assert "1000" in error["msg"]
            assert await served.run_count() == 0
            fits = await served.client.post(RUNS, json={"parameters": {"data": "x" * 900}})
            assert fits.status_code == 201, fits.text

    asyncio.run(go())


def test_a_body_over_the_limit_is_413_before_it_is_read(tmp_path):
    chunks_read = 0

    async def body(chunks: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
        nonlocal chunks_read
        yield b'{"parameters": {"data": "'
        for _ in range(chunks):
            chunks_read += 1
            yield b"x" * size
        yield b'"}}'

    async def go() -> None:
        nonlocal chunks_read
        async with serving(tmp_path) as served:
            # Content-Length says 200 MB: refused before a byte of the body is read.
            declared = {**JSON, "Content-Length": str(200 * 1024 * 1024)}
            answer = await served.client.post(RUNS, content=body(3200), headers=declared)
            assert answer.status_code == 413, answer.text
            assert answer.json()["detail"].startswith("request body larger than 1048576 bytes")
            assert answer.json()["errors"][0]["loc"] == ["body"]
            assert chunks_read == 0
            # Chunked, no length: counted as it streams, refused at the first chunk past 1 MiB
            # (the opening bytes and 16 chunks of 64 KiB), 3184 chunks before the end.
            answer = await served.client.post(RUNS, content=body(3200), headers=JSON)
            assert answer.status_code == 413, answer.text
            assert chunks_read == 16
            assert await served.run_count() == 0

    asyncio.run(go())


def test_the_body_limit_is_an_argument_of_create_app(tmp_path):
    async def go() -> None:
        async with serving(tmp_path, max_body_bytes=2000) as served:
            small = json.dumps({"parameters": {"data": "x" * 1900}}).encode()
            assert len(small) <= 2000
            fits = await served.client.post(RUNS, content=small, headers=JSON)
            assert fits.status_code == 201, fits.text
            large = json.dumps({"parameters": {"data": "x" * 2000}})
            refused = await served.client.post(RUNS, content=large, headers=JSON)
            assert refused.status_code == 413
            assert "larger than 2000 bytes" in refused.json()["detail"]
            assert await served.run_count() == 1

    asyncio.run(go())


def test_names_are_bounded_by_what_the_api_path_accepts(tmp_path):
    longest = "d" * MAX_NAME_LENGTH
    assert check_name("deployment", longest) == longest
    with pytest.raises(UsageError, match=f"at most {MAX_NAME_LENGTH}"):
        check_name("deployment", longest + "d")

    async def go() -> None:
        async with serving(tmp_path, deployment=longest) as served:
            answer = await served.client.get(f"/api/deployments/anything/{longest}")
            assert answer.status_code == 200, answer.text
            runs = await served.client.get(
                "/api/runs", params={"deployment": f"anything/{longest}"}
            )
            assert runs.status_code == 200, runs.text

    asyncio.run(go())
