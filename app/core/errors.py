"""Errors the API returns, each rendered once as RFC 9457 `application/problem+json` with a stable `code`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.config import get_settings
from app.core.db import DATABASE_UNAVAILABLE_ERRORS

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ApiError(Exception):
    """A failure with an HTTP status and a stable machine-readable code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable
        self.headers = headers or {}
        self.extra = extra or {}


def not_found(resource: str = "resource") -> ApiError:
    return ApiError(404, "not_found", f"No such {resource}.")


def field_path(loc: list[Any]) -> str:
    """`["body", "speakers", 0, "point", "x"]` → `speakers.0.point.x`: the `param` of a problem."""
    parts = loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc
    return ".".join(str(part) for part in parts)


def problem_response(
    status: int,
    code: str,
    message: str,
    *,
    retryable: bool = False,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """One shape for every problem: a problem about the request's content names the field twice, as
    `param` (dotted path of the first field at fault) and as `errors: [{loc, message, type}]` (all).
    """
    body: dict[str, Any] = {
        "type": f"https://docs.redub.dev/errors/{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": message,
        "retryable": retryable,
    }
    body.update(extra or {})
    if "param" in body and "errors" not in body:
        body["errors"] = [{"loc": ["body", *body["param"].split(".")], "message": message, "type": code}]
    elif body.get("errors") and "param" not in body and field_path(body["errors"][0]["loc"]):
        body["param"] = field_path(body["errors"][0]["loc"])
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return problem_response(
        error.status,
        error.code,
        error.message,
        retryable=error.retryable,
        headers=error.headers,
        extra=error.extra,
    )


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _error_item(item: Any) -> dict[str, Any]:
    loc = list(item.get("loc", ()))
    # A rule across fields (`give exactly one of video_url and video_file_id`) names the field it is about.
    field = (item.get("ctx") or {}).get("field")
    if field and loc == ["body"]:
        loc.append(field)
    return {"loc": loc, "message": item.get("msg", ""), "type": item.get("type", "")}


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [_error_item(item) for item in error.errors()]
    body_errors = [item for item in errors if item["loc"][:1] == ["body"]]
    content_type = request.headers.get("content-type", "")
    # A body that was not parsed as JSON because of its declared type (or the lack of one) is a 415.
    not_parsed = any(item["loc"] == ["body"] and item["type"] == "model_attributes_type" for item in errors)
    declared_other = bool(content_type) and not _is_json(content_type) and "multipart/" not in content_type
    if body_errors and (declared_other or (not content_type and not_parsed)):
        return problem_response(
            415,
            "unsupported_media_type",
            "Send the body as JSON with `Content-Type: application/json`"
            + (f", not {content_type.split(';')[0]!r}." if content_type else "."),
        )
    if any(item["type"] == "json_invalid" for item in errors):
        return problem_response(
            400, "invalid_json", "The body is not valid JSON; see `errors`.", extra={"errors": errors}
        )
    return problem_response(
        422, "validation_error", "The request is not valid; see `errors`.", extra={"errors": errors}
    )


# The framework's own HTTP errors (an unknown path, a method a path does not take) by status; any other
# status it raises is `http_error`.
_HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}
_OTHER_HTTP_ERROR = "http_error"


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    return problem_response(
        error.status_code,
        _HTTP_ERROR_CODES.get(error.status_code, _OTHER_HTTP_ERROR),
        str(error.detail),
        headers=dict(error.headers or {}),
    )


async def _database_unavailable(request: Request, error: Exception) -> JSONResponse:
    logger.warning("database unavailable", extra={"path": request.url.path, "error": type(error).__name__})
    retry_after = get_settings().database_retry_after_s
    return problem_response(
        503,
        "database_unavailable",
        f"The service cannot reach its database for a moment; retry in {retry_after} s.",
        retryable=True,
        headers={"Retry-After": str(retry_after)},
    )


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    logger.exception("unhandled error", extra={"path": request.url.path})
    return problem_response(500, "internal_error", "Something went wrong on our side.", retryable=True)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for error in DATABASE_UNAVAILABLE_ERRORS:
        app.add_exception_handler(error, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)


# Shared declarations for OpenAPI: every route may answer with a problem.
_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code", "detail", "retryable"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "Stable, machine-readable."},
        "detail": {"type": "string"},
        "retryable": {"type": "boolean", "description": "Whether the same request may succeed later."},
        "param": {"type": "string", "description": "The first field at fault, dotted."},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": _TITLES[status], "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_SCHEMA}}}
    for status in (400, 401, 404, 409, 410, 413, 415, 422, 429, 503)
}
# What any authenticated route may answer.
COMMON_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: PROBLEM_RESPONSES[status] for status in (401, 404, 422, 429, 503)
}
