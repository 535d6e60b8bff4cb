"""Bearer-token protection of mutating API calls.

The token comes from DOCKYARD_API_TOKEN or a file named by DOCKYARD_API_TOKEN_FILE (a
mounted secret, re-read on every check so a rotated secret works without a restart).
With no token configured, mutating calls work only while the server listens on
loopback, from a loopback caller that is not a browser page: ``web.browser`` refuses a
foreign ``Host``, a foreign ``Origin`` and a body that is not JSON before this guard runs.
Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import ipaddress
from pathlib import Path

from fastapi import HTTPException, Request, status


class TokenGuard:
    """Decides whether a request may change state."""

    def __init__(self, *, token: str | None, token_file: str | None, host: str) -> None:
        self._token = token or None
        self._token_file = Path(token_file) if token_file else None
        self.host = host

    def current_token(self) -> str | None:
        if self._token_file is not None:
            try:
                return self._token_file.read_text(encoding="utf-8").strip() or None
            except OSError:
                return None
        return self._token

    @property
    def configured(self) -> bool:
        """Whether a token (or a token file) is set: then no mutating call passes without it."""
        return self._token is not None or self._token_file is not None

    @property
    def loopback_only(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __call__(self, request: Request) -> None:
        token = self.current_token()
        if token is None:
            if self._token_file is not None:
                raise HTTPException(
                    status.HTTP_503_SERVICE_UNAVAILABLE,
                    detail=f"the API token file {self._token_file} cannot be read or is empty",
                )
            if self.loopback_only:
                return
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=(
                    "mutating calls need a token when the server listens beyond loopback: "
                    "set DOCKYARD_API_TOKEN (or DOCKYARD_API_TOKEN_FILE) and send "
                    "'Authorization: Bearer <token>'"
                ),
            )
        given = _bearer(request.headers.get("authorization", ""))
        if given is None or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="missing or wrong token: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )


def _bearer(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
