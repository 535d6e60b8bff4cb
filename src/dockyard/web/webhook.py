"""Push webhooks from a git host: ``X-Hub-Signature-256`` HMAC of the body, once per delivery.

When a webhook secret is configured (DOCKYARD_SOURCE_WEBHOOK_SECRET) a request that
carries a signature is accepted only if the signature matches; a request without one
needs the API token like any other mutating call.

A signed body can be recorded and sent again by anyone who sees it, so each delivery is
remembered for a while (``Deliveries``) and a repeat pulls nothing: by its delivery id
(``X-GitHub-Delivery``, ``X-Gitlab-Event-UUID``) and, for a signed one, by its body
(the id is not signed, so a replay could change it).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal

from fastapi import HTTPException, Request, status
from pydantic import BaseModel

from dockyard.web.auth import TokenGuard

HEADER = "x-hub-signature-256"
DELIVERY_HEADERS = ("x-github-delivery", "x-gitlab-event-uuid")
REMEMBERED_DELIVERIES = 10_000
REMEMBER_SECONDS = 3600.0


class Duplicate(BaseModel):
    """The answer to a webhook delivery seen before: nothing is pulled."""

    status: Literal["duplicate"] = "duplicate"
    detail: str


def signature(secret: str, body: bytes) -> str:
    """The header value a git host sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Deliveries:
    """The delivery keys seen in the last ``ttl_seconds``, at most ``capacity`` of them.

    A full set forgets its oldest key first. Time comes in as ``now`` (any monotonic
    seconds), so the rules can be tested without a clock.
    """

    def __init__(
        self, capacity: int = REMEMBERED_DELIVERIES, ttl_seconds: float = REMEMBER_SECONDS
    ) -> None:
        self.capacity = capacity
        self.ttl_seconds = ttl_seconds
        self._seen: OrderedDict[str, float] = OrderedDict()  # key → first seen, oldest first

    def first_time(self, keys: list[str], now: float) -> bool:
        """Remember ``keys``; False if any of them was seen within the last ttl_seconds."""
        while self._seen and next(iter(self._seen.values())) <= now - self.ttl_seconds:
            self._seen.popitem(last=False)
        if any(key in self._seen for key in keys):
            return False
        for key in keys:
            self._seen[key] = now
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._seen)


class WebhookAuth:
    def __init__(
        self,
        secret: str | None,
        deliveries: Deliveries | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.secret = secret
        self.deliveries = deliveries if deliveries is not None else Deliveries()
        self.clock = clock

    async def admit(self, request: Request, guard: TokenGuard) -> Duplicate | None:
        """Authorize the request; a ``Duplicate`` when the same delivery came before."""
        signed = await self.authorize(request, guard)
        ids = [request.headers[name] for name in DELIVERY_HEADERS if name in request.headers]
        keys = [_digest("id", value.encode()) for value in ids]
        if signed:
            keys.append(_digest("body", await request.body()))
        if not keys or self.deliveries.first_time(keys, self.clock()):
            return None
        return Duplicate(detail="this webhook delivery was received before; nothing is pulled")

    async def authorize(self, request: Request, guard: TokenGuard) -> bool:
        """Raise unless the request is signed with the secret or carries the token.

        Returns whether it was signed.
        """
        given = request.headers.get(HEADER)
        if given is None or self.secret is None:
            guard(request)
            return False
        expected = signature(self.secret, await request.body())
        if not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="the webhook signature (X-Hub-Signature-256) does not match the body; "
                "check the webhook secret on both sides",
            )
        return True


def _digest(kind: str, data: bytes) -> str:
    """A short fixed-size key, whatever the size of what a client sent."""
    return f"{kind}:{hashlib.sha256(data).hexdigest()[:32]}"
