"""A webhook delivery pulls once: a replayed one is answered 200 "duplicate" and pulls nothing."""

from __future__ import annotations

import asyncio
import json

import pytest

from dockyard.web.webhook import Deliveries, signature
from tests.web.conftest import serving

SECRET = "webhook-secret-1"
SYNC = "/api/sources/sync"


def signed(body: bytes, **extra: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature(SECRET, body)}
    return {**headers, **extra}


def push(after: str) -> bytes:
    return json.dumps({"ref": "refs/heads/main", "after": after}).encode()


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # (keys, seconds) per delivery → whether each one is seen for the first time
        ([(["a"], 0), (["a"], 1), (["a"], 3599)], [True, False, False]),
        ([(["a"], 0), (["a"], 3600)], [True, True]),  # remembered for one hour
        ([(["a"], 0), (["b"], 1), (["x", "b"], 2)], [True, True, False]),  # any key repeats
        ([(["a"], 0), (["b"], 1), (["c"], 2), (["a"], 3)], [True, True, True, True]),  # full
        ([(["a"], 0), (["b"], 1), (["c"], 2), (["c"], 3)], [True, True, True, False]),
    ],
)
def test_deliveries_are_remembered_for_a_while_and_within_a_bound(events, expected):
    deliveries = Deliveries(capacity=2, ttl_seconds=3600)
    assert [deliveries.first_time(keys, now) for keys, now in events] == expected
    assert len(deliveries) <= 2


def test_ten_identical_signed_deliveries_pull_once(tmp_path):
    async def go() -> None:
        async with serving(tmp_path, webhook_secret=SECRET) as served:
            body = push("1" * 40)
            headers = signed(body, **{"X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"})
            answers = [
                await served.client.post(SYNC, content=body, headers=headers) for _ in range(10)
            ]
            assert [a.status_code for a in answers] == [202] + [200] * 9
            assert answers[0].json()["detail"].startswith("pulling")
            assert {a.json()["status"] for a in answers[1:]} == {"duplicate"}
            # The delivery id is not signed: a new one on the same body is still a replay.
            other_id = signed(body, **{"X-GitHub-Delivery": "another-id"})
            again = await served.client.post(SYNC, content=body, headers=other_id)
            assert again.status_code == 200 and again.json()["status"] == "duplicate"
            # A form-encoded signed body is no browser request: it is signed.
            form = signed(b"payload=1", **{"Content-Type": "application/x-www-form-urlencoded"})
            assert (
                await served.client.post(SYNC, content=b"payload=1", headers=form)
            ).status_code == 202

    asyncio.run(go())


def test_only_accepted_deliveries_are_remembered_and_other_bodies_pull(tmp_path):
    async def go() -> None:
        async with serving(tmp_path, webhook_secret=SECRET) as served:
            body = push("4" * 40)
            wrong = {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=00"}
            assert (await served.client.post(SYNC, content=body, headers=wrong)).status_code == 401
            right = await served.client.post(SYNC, content=body, headers=signed(body))
            assert right.status_code == 202, right.text  # the refused one was not remembered
            for after in ("1" * 40, "2" * 40, "3" * 40):
                other = push(after)
                answer = await served.client.post(SYNC, content=other, headers=signed(other))
                assert answer.status_code == 202, answer.text
            replay = await served.client.post(SYNC, content=body, headers=signed(body))
            assert replay.status_code == 200 and replay.json()["status"] == "duplicate"

    asyncio.run(go())


def test_gitlab_delivery_ids_repeat_and_manual_pulls_do_not(tmp_path):
    async def go() -> None:
        async with serving(tmp_path, token="t0k") as served:
            auth = {"Authorization": "Bearer t0k"}
            gitlab = {**auth, "X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e"}
            first = await served.client.post(SYNC, headers=gitlab)
            repeat = await served.client.post(SYNC, headers=gitlab)
            assert (first.status_code, repeat.status_code) == (202, 200)
            manual = [await served.client.post(SYNC, headers=auth) for _ in range(3)]
            assert [a.status_code for a in manual] == [202] * 3  # no id, not signed: each pulls

    asyncio.run(go())
