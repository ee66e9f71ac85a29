"""Typed exceptions: one class per kind of failure, each carrying the API's problem+json fields."""

from __future__ import annotations

from typing import Any

import httpx


class RedubError(Exception):
    """Base of every error this client raises.

    `status` is the HTTP status (None when no answer came), `code` the API's stable error code, `detail` its
    message, `retryable` whether the same request may succeed later, `param` the request field at fault.
    """

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retryable: bool = False,
        param: str | None = None,
        body: dict[str, Any] | None = None,
        headers: httpx.Headers | None = None,
    ) -> None:
        super().__init__(f"[{code}] {detail}" if code else detail)
        self.detail = detail
        self.status = status
        self.code = code
        self.retryable = retryable
        self.param = param
        self.body = body or {}
        self.headers = headers if headers is not None else httpx.Headers()

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Every field at fault (`[{loc, message, type}]`), for validation problems."""
        errors = self.body.get("errors")
        return errors if isinstance(errors, list) else []


class APIStatusError(RedubError):
    """The API answered with an error status."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, unknown or revoked."""


class NotFoundError(APIStatusError):
    """404: no such resource (another account's resources are 404 too)."""


class RateLimitError(APIStatusError):
    """429: too many requests or too many concurrent dubs; `retry_after` says when to try again."""

    @property
    def retry_after(self) -> float | None:
        from redub_client._retry import parse_retry_after

        return parse_retry_after(self.headers.get("Retry-After"))


class InvalidRequestError(APIStatusError):
    """Any other 4xx: the request itself is at fault (`param` names the field when one is)."""


class ServerError(APIStatusError):
    """5xx: the service failed; retried automatically before this is raised."""


class APIConnectionError(RedubError):
    """No answer: the connection failed (retried automatically before this is raised)."""


class Timeout(RedubError):
    """A wait ran out (`Dub.wait`), or a request got no answer within the configured timeout."""


def error_from_response(response: httpx.Response) -> APIStatusError:
    """The typed exception for an error answer, from its problem+json body when there is one."""
    status = response.status_code
    body: dict[str, Any] = {}
    try:
        parsed = response.json()
        if isinstance(parsed, dict):
            body = parsed
    except ValueError:
        pass
    detail = body.get("detail")
    if not isinstance(detail, str):
        detail = response.text[:500] or response.reason_phrase or f"HTTP {status}"
    code = body.get("code") if isinstance(body.get("code"), str) else None
    retryable = body.get("retryable")
    param = body.get("param") if isinstance(body.get("param"), str) else None
    kind: type[APIStatusError]
    if status == 401:
        kind = AuthenticationError
    elif status == 404:
        kind = NotFoundError
    elif status == 429:
        kind = RateLimitError
    elif status >= 500:
        kind = ServerError
    else:
        kind = InvalidRequestError
    return kind(
        detail,
        status=status,
        code=code,
        retryable=retryable if isinstance(retryable, bool) else (status >= 500 or status == 429),
        param=param,
        body=body,
        headers=response.headers,
    )
