"""Refusing what a web page in the operator's browser could send (pure ASGI middleware).

A loopback server without a token trusts its callers to be local programs, not pages
(``web.auth``). Three checks make that true before any route runs:

- ``Host`` must be a name this server answers to (421 otherwise). A page whose own name
  resolves to 127.0.0.1 (DNS rebinding) sends its own name. The probes answer any Host:
  a kubelet sends the pod's IP.
- A state-changing request must come from this server's own origin (403 otherwise), as
  ``Origin`` and ``Sec-Fetch-Site`` tell.
- On a server without a token, a state-changing request without a bearer token must send
  JSON or no body at all (415 otherwise): a page can send ``text/plain`` or a form to any
  origin without asking, but not ``application/json``, not a bearer token and not a
  webhook signature. (With a token, such a request is refused 401 anyway.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard.web.problems import answer, field_error

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
PROBES = frozenset({"/health", "/ready", "/metrics"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SIGNED = "x-hub-signature-256"  # a page cannot send this header cross-origin without asking
FOREIGN_SITES = frozenset({"cross-site", "same-site"})
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class HostPolicy:
    """The ``Host`` names a server answers to; ``names=None`` answers to any."""

    names: frozenset[str] | None

    @classmethod
    def for_server(
        cls, bind_host: str, *, loopback: bool, allowed_hosts: Iterable[str] | None = None
    ) -> HostPolicy:
        """Loopback servers answer to loopback names only; others to any Host.

        ``allowed_hosts`` adds names (and restricts a server beyond loopback to them and
        the loopback names); ``"*"`` among them answers to any Host.
        """
        extra = {_normalised(name) for name in allowed_hosts or ()}
        if "*" in extra or (not extra and not loopback):
            return cls(None)
        return cls(frozenset(LOOPBACK_NAMES | {_normalised(bind_host)} | extra))

    def allows(self, host_header: str | None) -> bool:
        if self.names is None or host_header is None:  # no Host: HTTP/1.0, not a browser
            return True
        return split_authority(host_header)[0] in self.names


class BrowserGuard:
    """The checks of this module's docstring, in that order, before the app runs."""

    def __init__(self, app: ASGIApp, hosts: HostPolicy, *, json_only: bool = True) -> None:
        self.app = app
        self.hosts = hosts
        self.json_only = json_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope, Headers(scope=scope))
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, header, detail = refusal
        error = field_error(["header", header], detail, "refused")
        await answer(scope, receive, send, status, detail, [error])

    def _refusal(self, scope: Scope, headers: Headers) -> tuple[int, str, str] | None:
        host = headers.get("host")
        if scope["path"] not in PROBES and not self.hosts.allows(host):
            return 421, "host", _foreign_host(host or "", self.hosts)
        if scope["method"] in SAFE_METHODS:
            return None
        origin = _origin_problem(headers, scope.get("scheme", "http"))
        if origin is not None:
            return 403, "origin", origin
        kind = _content_type_problem(headers) if self.json_only else None
        if kind is not None:
            return 415, "content-type", kind
        return None


def split_authority(authority: str) -> tuple[str, int | None]:
    """``("example.com", 8080)`` from ``Example.COM:8080``; ``("::1", None)`` from ``[::1]``."""
    text = authority.strip().lower()
    if text.startswith("["):
        name, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, sep, port = text.rpartition(":")
        if not sep or ":" in name:  # no port, or a bare IPv6 address
            name, port = text, ""
    return name.rstrip("."), int(port) if port.isdigit() else None


def _normalised(name: str) -> str:
    return name.strip().lower().strip("[]").rstrip(".")


def _foreign_host(host: str, hosts: HostPolicy) -> str:
    names = ", ".join(sorted(hosts.names or ()))
    return (
        f"Host {host!r} is not a name this server answers to ({names}): a web page that "
        "made its own name resolve to this address (DNS rebinding) is refused; add the "
        "name to the allowed hosts (DOCKYARD_ALLOWED_HOSTS) if it is yours"
    )


def _origin_problem(headers: Headers, scheme: str) -> str | None:
    origin = headers.get("origin")
    if origin is not None and not _same_origin(origin, headers.get("host"), scheme):
        return (
            f"cross-origin request refused: Origin {origin!r} is not this server "
            f"({headers.get('host')!r}); state changes come only from this server's own "
            "pages or from programs that send no Origin"
        )
    site = headers.get("sec-fetch-site")
    if site in FOREIGN_SITES:
        return f"cross-origin request refused: Sec-Fetch-Site is {site!r}"
    return None


def _same_origin(origin: str, host: str | None, scheme: str) -> bool:
    """Whether ``origin`` (a URL) names the authority the request was sent to."""
    try:
        parts = urlsplit(origin)
        origin_port = parts.port
    except ValueError:
        return False
    if host is None or not parts.hostname:
        return False  # includes Origin: null (sandboxed pages, file://)
    name, port = split_authority(host)
    default = DEFAULT_PORTS.get(parts.scheme, DEFAULT_PORTS.get(scheme))
    return parts.hostname == name and (origin_port or default) == (port or default)


def _content_type_problem(headers: Headers) -> str | None:
    if _bearer(headers.get("authorization", "")) or SIGNED in headers:
        return None
    content_type = headers.get("content-type")
    if content_type is None:
        if headers.get("content-length", "0").strip() in ("", "0") and (
            "transfer-encoding" not in headers
        ):
            return None  # no body at all: pause, resume, cancel, shutdown
        content_type = "none"
    media = content_type.partition(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return None
    return (
        "a state-changing request without a bearer token must send its body as JSON "
        f"(Content-Type: application/json), not {content_type!r}: a web page can send "
        "that to any server without asking first"
    )


def _bearer(header: str) -> bool:
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and bool(value.strip())
