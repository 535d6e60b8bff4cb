"""Canned answers for the public HTTP APIs that the corpus scripts call, so they run offline.

The corpus tests put this directory on ``PYTHONPATH``; Python imports ``sitecustomize`` at
start-up, before the script, so the scripts stay as their authors wrote them. Only requests
to the hosts below are answered here (GitHub's API, Dev.to, httpbin, CoinGecko); every other
request (the loopback API of a serve process, Prefect's own ephemeral server) goes out as
usual. Each answered request is appended to ``$CORPUS_HTTP_LOG`` when that is set, as
``<unix time> <method> <url>``, so a test can count the calls a script made (retries, cache
hits) and the time between them (retry delays).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from typing import Any

import httpx

REPO = {"stargazers_count": 17000, "forks_count": 1700, "open_issues_count": 150}
ISSUE_AUTHORS = 60  # 150 open issues by 60 people: 2.50 issues per user
CONTRIBUTORS = 30
PRICES = {"bitcoin": 65000.5, "ethereum": 3500.25, "solana": 150.0, "dogecoin": 0.12}


def _github(path: str, query: dict[str, str]) -> tuple[int, Any]:
    parts = path.strip("/").split("/")
    if len(parts) < 3 or parts[0] != "repos":
        return 404, {"message": "Not Found"}
    base = f"https://api.github.com/repos/{parts[1]}/{parts[2]}"
    if len(parts) == 3:
        full_name = f"{parts[1]}/{parts[2]}"
        return 200, {"full_name": full_name, "contributors_url": f"{base}/contributors", **REPO}
    if parts[3] == "contributors":
        return 200, [{"login": f"user{i}", "contributions": 100 - i} for i in range(CONTRIBUTORS)]
    if parts[3] == "issues":
        page, per_page = int(query.get("page", 1)), int(query.get("per_page", 30))
        first = (page - 1) * per_page + 1
        last = min(first + per_page - 1, REPO["open_issues_count"])
        numbers = range(first, last + 1)
        return 200, [{"number": n, "user": {"id": n % ISSUE_AUTHORS}} for n in numbers]
    return 404, {"message": "Not Found"}


def _devto(path: str, query: dict[str, str]) -> tuple[int, Any]:
    if path == "/api/articles":
        page, per_page = int(query.get("page", 1)), int(query.get("per_page", 30))
        ids = [page * 100 + k for k in range(per_page)]
        return 200, [{"id": i, "title": f"Article {i}"} for i in ids]
    match = re.fullmatch(r"/api/articles/(\d+)", path)
    if match:
        return 200, {"id": int(match[1]), "title": f"Article {match[1]}"}
    return 404, {"error": "not found"}


def _httpbin(path: str, query: dict[str, str]) -> tuple[int, Any]:
    match = re.fullmatch(r"/status/(\d{3})", path)
    return (int(match[1]), "") if match else (404, "")


def _coingecko(path: str, query: dict[str, str]) -> tuple[int, Any]:
    ids = query.get("ids", "").split(",")
    return 200, {i: {"usd": PRICES[i]} for i in ids if i in PRICES}


ROUTES: dict[str, Callable[[str, dict[str, str]], tuple[int, Any]]] = {
    "api.github.com": _github,
    "dev.to": _devto,
    "httpbin.org": _httpbin,
    "api.coingecko.com": _coingecko,
}


def _answer(request: httpx.Request) -> httpx.Response:
    log = os.environ.get("CORPUS_HTTP_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as sink:
            sink.write(f"{time.time():.3f} {request.method} {request.url}\n")
    query = dict(request.url.params)
    status, body = ROUTES[request.url.host](request.url.path, query)
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    headers = {"content-type": "application/json"} if not isinstance(body, str) else {}
    return httpx.Response(status, content=content, headers=headers, request=request)


def _install() -> None:
    sync_send = httpx.HTTPTransport.handle_request
    async_send = httpx.AsyncHTTPTransport.handle_async_request

    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        if request.url.host in ROUTES:
            return _answer(request)
        return sync_send(self, request)

    async def handle_async_request(
        self: httpx.AsyncHTTPTransport, request: httpx.Request
    ) -> httpx.Response:
        if request.url.host in ROUTES:
            return _answer(request)
        return await async_send(self, request)

    httpx.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign]
    httpx.AsyncHTTPTransport.handle_async_request = handle_async_request  # type: ignore[method-assign]


_install()
