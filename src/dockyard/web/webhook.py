"""Push webhooks from a git host: ``X-Hub-Signature-256`` HMAC of the body.

When a webhook secret is configured (DOCKYARD_SOURCE_WEBHOOK_SECRET) a request that
carries a signature is accepted only if the signature matches; a request without one
needs the API token like any other mutating call.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import HTTPException, Request, status

from dockyard.web.auth import TokenGuard

HEADER = "x-hub-signature-256"


def signature(secret: str, body: bytes) -> str:
    """The header value a git host sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookAuth:
    def __init__(self, secret: str | None) -> None:
        self.secret = secret

    async def authorize(self, request: Request, guard: TokenGuard) -> None:
        given = request.headers.get(HEADER)
        if given is None or self.secret is None:
            guard(request)
            return
        expected = signature(self.secret, await request.body())
        if not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="the webhook signature (X-Hub-Signature-256) does not match the body; "
                "check the webhook secret on both sides",
            )
