"""What a web page in the operator's browser can send is refused; local programs still work.

Default settings: loopback, no token. A page can send a "simple" cross-origin request
(text/plain or form body, no custom headers) without asking, and with DNS rebinding it
can make its own name resolve to 127.0.0.1 and read the answers.
"""

from __future__ import annotations

import asyncio

import pytest

from dockyard.web.browser import HostPolicy, split_authority
from tests.web.conftest import JSON, RUNS, serving

PAUSE = "/api/deployments/anything/d/pause"
EVIL = "http://evil.example"
PLAIN = {"Content-Type": "text/plain"}


@pytest.mark.parametrize(
    ("authority", "expected"),
    [
        ("localhost", ("localhost", None)),
        ("LocalHost:8080", ("localhost", 8080)),
        ("127.0.0.1:80", ("127.0.0.1", 80)),
        ("[::1]:8080", ("::1", 8080)),
        ("[::1]", ("::1", None)),
        ("::1", ("::1", None)),
        ("example.com.:443", ("example.com", 443)),
        ("example.com:http", ("example.com", None)),
    ],
)
def test_split_authority(authority, expected):
    assert split_authority(authority) == expected


@pytest.mark.parametrize(
    ("bind", "loopback", "allowed", "host", "ok"),
    [
        ("127.0.0.1", True, None, "127.0.0.1:8080", True),
        ("127.0.0.1", True, None, "localhost:8080", True),
        ("127.0.0.1", True, None, "[::1]:8080", True),
        ("127.0.0.1", True, None, "evil.example:8080", False),
        ("127.0.0.1", True, None, "127.0.0.1.evil.example", False),
        ("127.0.0.2", True, None, "127.0.0.2:8080", True),
        ("127.0.0.1", True, ["dockyard.internal"], "Dockyard.Internal:8080", True),
        ("127.0.0.1", True, ["*"], "anything.example", True),
        ("0.0.0.0", False, None, "10.1.2.3:8080", True),
        ("0.0.0.0", False, ["dockyard.example"], "10.1.2.3:8080", False),
        ("0.0.0.0", False, ["dockyard.example"], "dockyard.example", True),
    ],
)
def test_host_policy(bind, loopback, allowed, host, ok):
    policy = HostPolicy.for_server(bind, loopback=loopback, allowed_hosts=allowed)
    assert policy.allows(host) is ok


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/deployments"),
        ("GET", "/api/runs"),
        ("GET", "/openapi.json"),
        ("POST", PAUSE),
        ("POST", "/api/shutdown"),
    ],
)
def test_a_foreign_host_is_421_on_a_loopback_server(tmp_path, method, path):
    async def go() -> None:
        async with serving(tmp_path) as served:
            headers = {"Host": "evil.example:8080"}
            answer = await served.client.request(method, path, headers=headers)
            assert answer.status_code == 421, answer.text
            assert answer.json()["errors"][0]["loc"] == ["header", "host"]
            assert "DNS rebinding" in answer.json()["detail"]
            assert not (await served.client.get("/api/deployments")).json()[0]["paused"]
            assert not served.service.status.should_exit

    asyncio.run(go())


def test_probes_answer_any_host_and_so_does_a_server_beyond_loopback(tmp_path):
    pod_ip = {"Host": "10.244.1.7:8080"}  # what a kubelet's probe sends

    async def go() -> None:
        async with serving(tmp_path) as served:
            assert (await served.client.get("/api/runs", headers=pod_ip)).status_code == 421
            for path in ("/health", "/ready", "/metrics"):
                answer = await served.client.get(path, headers=pod_ip)
                assert answer.status_code != 421, (path, answer.text)  # /health: 503, no tick
        async with serving(tmp_path, host="0.0.0.0", token="t0k") as served:
            answer = await served.client.get("/api/runs", headers=pod_ip)
            assert answer.status_code == 200, answer.text
        async with serving(tmp_path, allowed_hosts=["dockyard.internal"]) as served:
            mine = await served.client.get("/api/runs", headers={"Host": "dockyard.internal"})
            assert mine.status_code == 200, mine.text
            other = await served.client.get("/api/runs", headers={"Host": "evil.example"})
            assert other.status_code == 421

    asyncio.run(go())


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL},
        {"Origin": "http://127.0.0.1:3000"},  # another local port is another origin
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_cross_origin_state_change_is_403(tmp_path, headers):
    async def go() -> None:
        async with serving(tmp_path) as served:
            for path, body in ((RUNS, {"parameters": {}}), (PAUSE, None), ("/api/shutdown", None)):
                answer = await served.client.post(path, json=body, headers=headers)
                assert answer.status_code == 403, (path, answer.text)
                assert answer.json()["errors"][0]["loc"][0] == "header"
                assert "cross-origin request refused" in answer.json()["detail"]
            assert await served.run_count() == 0
            assert not (await served.client.get("/api/deployments")).json()[0]["paused"]
            assert not served.service.status.should_exit

    asyncio.run(go())


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", None],
)
def test_a_body_that_is_not_json_without_a_token_is_415(tmp_path, content_type):
    async def go() -> None:
        async with serving(tmp_path) as served:
            headers = {"Content-Type": content_type} if content_type else {}
            for path in (RUNS, PAUSE, "/api/shutdown"):
                answer = await served.client.post(path, content=b"{}", headers=headers)
                assert answer.status_code == 415, (path, answer.text)
                assert answer.json()["errors"][0]["loc"] == ["header", "content-type"]
            assert await served.run_count() == 0
            assert not served.service.status.should_exit

    asyncio.run(go())


def test_state_changes_need_json_a_bearer_token_or_no_body(tmp_path):
    async def go() -> None:
        async with serving(tmp_path) as served:
            client = served.client
            assert (await client.post(RUNS, content=b"{}", headers=PLAIN)).status_code == 415
            same_origin = {"Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"}
            created = await client.post(RUNS, json={"parameters": {}}, headers=same_origin)
            assert created.status_code == 201, created.text
            as_json = await client.post(RUNS, content=b'{"parameters": {}}', headers=JSON)
            assert as_json.status_code == 201, as_json.text
            assert (await client.post(PAUSE)).status_code == 200  # no body, no Content-Type
            vendor = {"Content-Type": "application/vnd.api+json"}
            assert (await client.post(RUNS, content=b"{}", headers=vendor)).status_code == 201
            assert await served.run_count() == 3
        async with serving(tmp_path, token="t0k") as served:  # a bearer token: any body
            auth = {"Authorization": "Bearer t0k", "Content-Type": "text/plain"}
            answer = await served.client.post(PAUSE, content=b"x", headers=auth)
            assert answer.status_code == 200, answer.text
            anonymous = await served.client.post(PAUSE, content=b"x", headers=PLAIN)
            assert anonymous.status_code == 401, anonymous.text  # the token rule answers

    asyncio.run(go())
