"""Bearer-token protection of mutating API calls.

The token comes from DOCKYARD_API_TOKEN or a file named by DOCKYARD_API_TOKEN_FILE (a
mounted secret, re-read on every check so a rotated secret works without a restart).
With no token configured, mutating calls work only while the server listens on
loopback, from a loopback caller that is not a browser page: ``web.browser`` refuses a
foreign ``Host``, a foreign ``Origin`` and a body that is not JSON before this guard runs.

A flow run gets a token of its own (``RunTokens``, in its private spec file, never in its
environment): valid while the run is active, for reading, starting runs of deployments
and changing run tags (``run_deployment``, ``get_client``), and for cancelling the run
itself; anything else is refused 403, whatever token the server has. Tokens are compared
in constant time and never logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
import threading
from pathlib import Path

from fastapi import HTTPException, Request, status
from fastapi.security import HTTPBearer

RUN_TOKEN_PREFIX = "dyrun_"
"""Run tokens start with this, so a stale one is told apart from a wrong API token."""
RUN_TOKEN_ROUTES = frozenset({("POST", "/deployments/{}/{}/runs"), ("PATCH", "/runs/{}")})
"""The mutating ``/api`` routes a run's token may call (path parameters written ``{}``)."""
OWN_RUN_ROUTES = frozenset({("POST", "/runs/{}/cancel")})
"""Routes a run's token may call for its own run only."""
READABLE = ("/deployments", "/runs")
BEARER = HTTPBearer(
    scheme_name="bearer",
    description="The API token (DOCKYARD_API_TOKEN), or a flow run's own token. A server "
    "without a token takes mutating calls from loopback callers only.",
    auto_error=False,  # declares the scheme; TokenGuard decides
)
"""The security scheme the OpenAPI document declares on the mutating routes."""
_PARAMETER = re.compile(r"\{[^}]*\}")


class RunTokens:
    """The tokens of the active flow runs: issued as an attempt starts, revoked as it ends.

    Issued and revoked on the serve process's event loop, checked from the webserver's
    worker threads (FastAPI runs sync dependencies there): hence the lock.
    """

    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RunTokens({len(self._tokens)} active)"

    def issue(self, run_id: str) -> str:
        """A new token for ``run_id`` (replacing the one of its previous attempt)."""
        token = RUN_TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[run_id] = token
        return token

    def revoke(self, run_id: str) -> None:
        with self._lock:
            self._tokens.pop(run_id, None)

    def holder(self, token: str) -> str | None:
        """The run ``token`` belongs to, or None (compared with every token, in constant time)."""
        with self._lock:
            active = list(self._tokens.items())
        found = None
        for run_id, known in active:
            if hmac.compare_digest(known.encode(), token.encode()):
                found = run_id
        return found


class TokenGuard:
    """Decides whether a request may change state."""

    def __init__(
        self,
        *,
        token: str | None,
        token_file: str | None,
        host: str,
        run_tokens: RunTokens | None = None,
    ) -> None:
        self._token = token or None
        self._token_file = Path(token_file) if token_file else None
        self.host = host
        self.run_tokens = run_tokens

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
        given = _bearer(request.headers.get("authorization", ""))
        token = self.current_token()
        if given is not None and given.startswith(RUN_TOKEN_PREFIX) and not _same(given, token):
            self._check_run_token(request, given)
            return
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
        if given is None or not _same(given, token):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="missing or wrong token: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def _check_run_token(self, request: Request, given: str) -> None:
        run_id = self.run_tokens.holder(given) if self.run_tokens is not None else None
        if run_id is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="this flow run's token is no longer valid: it works only while its run "
                "is active",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not run_may(request, run_id):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"a flow run's token may read deployments and runs, start runs and "
                f"change run tags, not {request.method} {request.url.path}: that needs the "
                "API token",
            )


def run_may(request: Request, run_id: str) -> bool:
    """Whether the token of the active run ``run_id`` may make ``request``."""
    route = getattr(request.scope.get("route"), "path", None)
    if not isinstance(route, str):
        return False
    route = route.removeprefix("/api")  # the router's own path, whether or not it has the prefix
    call = (request.method, _PARAMETER.sub("{}", route))
    if request.method in ("GET", "HEAD"):
        return route.startswith(READABLE)
    if call in OWN_RUN_ROUTES:
        return request.path_params.get("run_id") == run_id
    return call in RUN_TOKEN_ROUTES


def _same(given: str, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(given.encode(), token.encode())


def _bearer(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
