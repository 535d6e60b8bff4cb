"""A small HTTP client of a running ``dockyard serve`` process (its ``/api`` routes).

Every method returns the server's JSON. Network failures and 4xx/5xx answers become
one-line ``DockyardError``\\ s: 404 → ``NotFoundError`` (exit 1), 400/422 →
``UsageError`` (exit 2), everything else → ``ApiError`` / ``ServerUnreachable``
(exit 1). The API token is sent as ``Authorization: Bearer …`` and never appears in
a message, a repr or a chained exception.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from dockyard.errors import DockyardError, NotFoundError, ParameterError, UsageError

TIMEOUT_SECONDS = 10.0
CONNECT_SECONDS = 5.0


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
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        with _transport_errors(self.url, token):  # a malformed URL is a usage error
            self._http = httpx.Client(
                base_url=self.url + "/api",
                headers=headers,
                timeout=httpx.Timeout(timeout, connect=CONNECT_SECONDS),
                transport=transport,
            )

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ── deployments ──────────────────────────────────────────────────────────────────

    def list_deployments(self) -> list[dict[str, Any]]:
        return self._call("GET", "/deployments")

    def get_deployment(self, name: str) -> dict[str, Any]:
        return self._call("GET", _deployment_path(name))

    def pause(self, name: str) -> dict[str, Any]:
        return self._call("POST", _deployment_path(name) + "/pause")

    def resume(self, name: str) -> dict[str, Any]:
        return self._call("POST", _deployment_path(name) + "/resume")

    def create_run(self, name: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
        """Start an ad-hoc run; the server validates and coerces ``parameters``."""
        body = {"parameters": parameters or {}}
        return self._call("POST", _deployment_path(name) + "/runs", json=body)

    # ── runs ─────────────────────────────────────────────────────────────────────────

    def list_runs(self, **filters: Any) -> dict[str, Any]:
        """``filters``: deployment, state (list), since, until, limit, offset."""
        params = {k: v for k, v in filters.items() if v is not None and v != []}
        return self._call("GET", "/runs", params=params)

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self._call("GET", _run_path(run_id))

    def logs(self, run_id: str, tail: int | None = None) -> dict[str, Any]:
        params = {"tail": tail} if tail is not None else {}
        return self._call("GET", _run_path(run_id) + "/logs", params=params)

    def follow_logs(self, run_id: str, tail: int | None = None) -> Iterator[dict[str, Any]]:
        """Stored, then new, log lines until the run ends.

        The last item is the server's ``{"end": True, "state": "Completed"}`` line.
        """
        params: dict[str, Any] = {"follow": "true", **({"tail": tail} if tail else {})}
        # No read timeout: a quiet run sends nothing for as long as it likes.
        timeout = httpx.Timeout(None, connect=CONNECT_SECONDS)
        with self._errors():
            request = self._http.build_request(
                "GET", _run_path(run_id) + "/logs", params=params, timeout=timeout
            )
            response = self._http.send(request, stream=True)
            try:
                if response.is_error:
                    response.read()
                    raise _api_error(response, token_sent=self._token is not None)
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
        return self._call("POST", _run_path(run_id) + "/cancel")

    # ── plumbing ─────────────────────────────────────────────────────────────────────

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        with self._errors():
            response = self._http.request(method, path, **kwargs)
        if response.is_error:
            raise _api_error(response, token_sent=self._token is not None)
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                f"{response.status_code}: the answer of {self.url} is not JSON; "
                "is --url / DOCKYARD_URL the dockyard webserver?",
                response.status_code,
            ) from None

    def _errors(self) -> contextlib.AbstractContextManager[None]:
        return _transport_errors(self.url, self._token)


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


def _api_error(response: httpx.Response, *, token_sent: bool) -> DockyardError:
    status = response.status_code
    detail, errors = _problem(response)
    if status == 422 and errors:
        detail = _with_field_errors(detail, errors)
    if status == 401:
        detail += " (the token is read from DOCKYARD_API_TOKEN" + (
            "; the one sent was rejected)" if token_sent else ", which is not set)"
        )
    message = f"{status}: {detail}"
    if status == 404:
        return NotFoundError(message)
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


def _deployment_path(name: str) -> str:
    flow, sep, deployment = name.partition("/")
    if not sep or not flow or not deployment or "/" in deployment:
        raise UsageError(f"deployment {name!r}: expected FLOW/DEPLOYMENT, e.g. hello/hello")
    return f"/deployments/{quote(flow, safe='')}/{quote(deployment, safe='')}"


def _run_path(run_id: str) -> str:
    if not run_id.strip():
        raise UsageError("a run id is required")
    return f"/runs/{quote(run_id, safe='')}"
