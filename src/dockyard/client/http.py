"""A small HTTP client of a running ``dockyard serve`` process (its ``/api`` routes).

``Client`` (sync) returns the server's JSON; ``AsyncApi`` sends the same requests from
async code (``dockyard.client.orchestration``'s async client). Network failures and
4xx/5xx answers become one-line ``DockyardError``\\ s: 404 → ``NotFoundError`` (exit 1),
400/422 → ``UsageError`` (exit 2), everything else → ``ApiError`` / ``ServerUnreachable``
(exit 1). The API token is sent as ``Authorization: Bearer …`` and never appears in a
message, a repr or a chained exception.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
from pydantic import SecretStr

from dockyard.client.paths import deployment_path, run_body, run_path
from dockyard.errors import (
    ConflictError,
    DockyardError,
    NotFoundError,
    ParameterError,
    UsageError,
)

TIMEOUT_SECONDS = 10.0
CONNECT_SECONDS = 5.0
TOKEN_FROM = "DOCKYARD_API_TOKEN or DOCKYARD_API_TOKEN_FILE"
"""Where a client's token comes from, as a rejected request's error says."""


class ServerUnreachable(DockyardError):
    """No answer from the serve process: wrong URL, not running, or not listening yet."""


class ApiError(DockyardError):
    """An error answer of the API that is neither a 404 nor bad input (401, 403, 5xx)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Client:
    """``Client(url, token)``: the API of one serve process; use it as a context manager.

    ``url`` is the webserver's base URL (``http://127.0.0.1:8080``); ``token`` is sent as
    a bearer token with every request (mutating calls need it when the server has one).
    """

    def __init__(
        self,
        url: str,
        token: SecretStr | None = None,
        *,
        timeout: float = TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
        token_from: str | None = TOKEN_FROM,
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._hint = _token_hint(token_from, sent=token is not None)
        with _transport_errors(self.url, token):  # a malformed URL is a usage error
            self._http = httpx.Client(**_options(self.url, token, timeout), transport=transport)

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ── deployments ──────────────────────────────────────────────────────────────────

    def list_deployments(self, *, every: bool = False) -> list[dict[str, Any]]:
        """The served deployments; ``every``: also those no serve process serves any more."""
        return self.call("GET", "/deployments", params={"all": "true"} if every else None)

    def delete_deployment(self, name: str) -> dict[str, Any]:
        """Remove a deployment no serve process serves, with its runs (``{"name", "runs"}``)."""
        return self.call("DELETE", deployment_path(name))

    def get_deployment(self, name: str) -> dict[str, Any]:
        return self.call("GET", deployment_path(name))

    def pause(self, name: str) -> dict[str, Any]:
        return self.call("POST", deployment_path(name) + "/pause")

    def resume(self, name: str) -> dict[str, Any]:
        return self.call("POST", deployment_path(name) + "/resume")

    def create_run(
        self,
        name: str,
        parameters: dict[str, Any] | None = None,
        *,
        tags: list[str] | None = None,
    ) -> dict[str, Any]:
        """Start an ad-hoc run; the server validates and coerces ``parameters``.

        ``tags`` (when given) are the run's; else it gets the deployment's.
        """
        return self.call("POST", deployment_path(name) + "/runs", json=run_body(parameters, tags))

    # ── runs ─────────────────────────────────────────────────────────────────────────

    def list_runs(self, **filters: Any) -> dict[str, Any]:
        """``filters``: deployment, state (list), since, until, limit, offset."""
        params = {k: v for k, v in filters.items() if v is not None and v != []}
        return self.call("GET", "/runs", params=params)

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self.call("GET", run_path(run_id))

    def update_run(self, run_id: str, *, tags: list[str]) -> dict[str, Any]:
        """Replace the run's tags."""
        return self.call("PATCH", run_path(run_id), json={"tags": list(tags)})

    def logs(self, run_id: str, tail: int | None = None) -> dict[str, Any]:
        params = {"tail": tail} if tail is not None else {}
        return self.call("GET", run_path(run_id) + "/logs", params=params)

    def follow_logs(self, run_id: str, tail: int | None = None) -> Iterator[dict[str, Any]]:
        """Stored, then new, log lines until the run ends.

        The last item is the server's ``{"end": True, "state": "Completed"}`` line.
        """
        params: dict[str, Any] = {"follow": "true", **({"tail": tail} if tail else {})}
        # No read timeout: a quiet run sends nothing for as long as it likes.
        timeout = httpx.Timeout(None, connect=CONNECT_SECONDS)
        with self._errors():
            request = self._http.build_request(
                "GET", run_path(run_id) + "/logs", params=params, timeout=timeout
            )
            response = self._http.send(request, stream=True)
            try:
                if response.is_error:
                    response.read()
                    raise _api_error(response, self._hint)
                for text in response.iter_lines():
                    if not text.strip():
                        continue
                    item = json.loads(text)
                    yield item
                    if item.get("end"):
                        return
            finally:
                response.close()
        raise ServerUnreachable(
            f"the log stream of run {run_id} stopped before the run ended; "
            "the serve process may have shut down"
        )

    def cancel_run(self, run_id: str) -> dict[str, Any]:
        return self.call("POST", run_path(run_id) + "/cancel")

    # ── plumbing ─────────────────────────────────────────────────────────────────────

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request under ``/api``; return its JSON answer."""
        with self._errors():
            response = self._http.request(method, path, **kwargs)
        return _answer(response, self.url, self._hint)

    def _errors(self) -> contextlib.AbstractContextManager[None]:
        return _transport_errors(self.url, self._token)


class AsyncApi:
    """``AsyncApi(url, token)``: ``Client.call`` for async code; use it as an async context
    manager. Same errors, headers and timeouts as ``Client``."""

    def __init__(
        self,
        url: str,
        token: SecretStr | None = None,
        *,
        timeout: float = TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
        token_from: str | None = TOKEN_FROM,
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._hint = _token_hint(token_from, sent=token is not None)
        with _transport_errors(self.url, token):
            self._http = httpx.AsyncClient(
                **_options(self.url, token, timeout), transport=transport
            )

    def __repr__(self) -> str:
        return f"AsyncApi({self.url!r})"

    async def __aenter__(self) -> AsyncApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request under ``/api``; return its JSON answer."""
        with _transport_errors(self.url, self._token):
            response = await self._http.request(method, path, **kwargs)
        return _answer(response, self.url, self._hint)


def _options(url: str, token: SecretStr | None, timeout: float) -> dict[str, Any]:
    """What ``httpx.Client`` and ``httpx.AsyncClient`` are made with."""
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token.get_secret_value()}"
    return {
        "base_url": url + "/api",
        "headers": headers,
        "timeout": httpx.Timeout(timeout, connect=CONNECT_SECONDS),
    }


def _token_hint(token_from: str | None, *, sent: bool) -> str | None:
    """What a 401 adds: where the token comes from (None: nothing to add)."""
    if token_from is None:
        return None
    return f"the token is read from {token_from}" + (
        "; the one sent was rejected" if sent else ", which is not set"
    )


def _answer(response: httpx.Response, url: str, hint: str | None) -> Any:
    """The JSON of a successful answer; the ``DockyardError`` of a failed one."""
    if response.is_error:
        raise _api_error(response, hint)
    try:
        return response.json()
    except ValueError:
        raise ApiError(
            f"{response.status_code}: the answer of {url} is not JSON; "
            "is --url / DOCKYARD_URL the dockyard webserver?",
            response.status_code,
        ) from None


@contextlib.contextmanager
def _transport_errors(url: str, token: SecretStr | None) -> Iterator[None]:
    """Turn httpx's network errors into one line that says what to check."""
    try:
        yield
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        reason = str(exc).rstrip(".")
        raise UsageError(f"invalid URL {url!r} ({reason}); set --url or DOCKYARD_URL") from None
    except httpx.ConnectError as exc:
        raise ServerUnreachable(
            f"cannot reach the serve process at {url} ({_reason(exc, token)}); "
            "is it running? set --url or DOCKYARD_URL"
        ) from None
    except httpx.ConnectTimeout:
        raise ServerUnreachable(
            f"cannot reach the serve process at {url} (no connection within "
            f"{CONNECT_SECONDS:g}s); is it running? set --url or DOCKYARD_URL"
        ) from None
    except httpx.TimeoutException:
        raise ServerUnreachable(
            f"no answer from the serve process at {url} within {TIMEOUT_SECONDS:g}s"
        ) from None
    except httpx.HTTPError as exc:  # the connection broke half-way (e.g. the server stopped)
        raise ServerUnreachable(
            f"the connection to the serve process at {url} broke ({_reason(exc, token)})"
        ) from None
    except json.JSONDecodeError:
        raise ApiError(f"the log stream of {url} is not NDJSON", 200) from None


def _reason(exc: BaseException, token: SecretStr | None) -> str:
    """'connection refused' rather than '[Errno 111] Connection refused'."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or "Errno 111" in str(cause):
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    if token is not None and token.get_secret_value() in text:
        return type(exc).__name__  # never echo the token, whatever ended up in the message
    return re.sub(r"^\[Errno -?\d+\] ", "", text)


def _api_error(response: httpx.Response, hint: str | None) -> DockyardError:
    status = response.status_code
    detail, errors = _problem(response)
    if status == 422 and errors:
        detail = _with_field_errors(detail, errors)
    if status == 401 and hint:
        detail += f" ({hint})"
    message = f"{status}: {detail}"
    if status == 404:
        return NotFoundError(message)
    if status == 409:
        return ConflictError(message)
    if status == 422:
        return ParameterError(message, errors)
    if status == 400:
        return UsageError(message)
    return ApiError(message, status)


def _problem(response: httpx.Response) -> tuple[str, list[dict[str, Any]]]:
    """The server's ``detail`` and field ``errors``, or a short excerpt of a foreign body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        errors = body.get("errors")
        return body["detail"], errors if isinstance(errors, list) else []
    if isinstance(body, dict) and isinstance(body.get("detail"), list):  # FastAPI's default 422
        return "invalid request", body["detail"]
    text = " ".join(response.text.split())[:200]
    return f"{response.reason_phrase}{': ' + text if text else ''}", []


def _with_field_errors(detail: str, errors: list[dict[str, Any]]) -> str:
    """Add each field error that ``detail`` does not already mention."""
    extra = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", [])]
        while loc and loc[0] in ("body", "query", "path", "parameters"):
            loc = loc[1:]
        text = f"{'.'.join(loc) or 'request'}: {error.get('msg', 'invalid')}"
        if text not in detail:
            extra.append(text)
    return "; ".join([detail, *extra]) if extra else detail
