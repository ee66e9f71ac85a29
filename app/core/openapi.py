"""The OpenAPI document as integrators need it: the bearer scheme (so "Try it out" works), the headers every
answer carries, and the webhook events (OpenAPI 3.1 `webhooks`) with their payloads."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.core.errors import PROBLEM_RESPONSES

_STRING = {"schema": {"type": "string"}}
_INTEGER = {"schema": {"type": "integer"}}
_EVERY_ANSWER = {"X-Request-Id": {"description": "This request's id (yours, if you sent one).", **_STRING}}
_RATE_LIMIT = {
    "RateLimit-Limit": {
        "description": "Requests allowed in this minute's bucket (reads and writes apart).",
        **_INTEGER,
    },
    "RateLimit-Remaining": {"description": "Requests left in the bucket.", **_INTEGER},
    "RateLimit-Reset": {"description": "Seconds until the bucket refills.", **_INTEGER},
    "RateLimit-Policy": {"description": "`LIMIT;w=60`.", **_STRING},
}
_CREATED = {
    "Location": {"description": "The new resource.", **_STRING},
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request.",
        **_STRING,
    },
    "Preference-Applied": {"description": "`wait=N` when `Prefer: wait=N` was honoured.", **_STRING},
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.", **_INTEGER}}
_PUBLIC_PATHS = ("/healthz", "/readyz")


def install_openapi(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            openapi_version=app.openapi_version,
            description=app.description,
            routes=app.routes,
            webhooks=app.webhooks.routes,
        )
        components = schema.setdefault("components", {})
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "Your API key, `rdb_…`."}
        }
        schema["security"] = [{"bearer": []}]
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if path in _PUBLIC_PATHS:
                    operation["security"] = []
                if "requestBody" in operation:
                    # Any body may be malformed (400 invalid_json) or of another type (415): both documented.
                    for status in ("400", "415"):
                        operation["responses"].setdefault(status, PROBLEM_RESPONSES[int(status)])
                for status, response in operation.get("responses", {}).items():
                    headers = response.setdefault("headers", {})
                    headers.update(_EVERY_ANSWER)
                    if path not in _PUBLIC_PATHS and status != "401":
                        headers.update(_RATE_LIMIT)
                    if status in ("409", "429", "503"):
                        headers.update(_RETRY_AFTER)
                    if method == "post" and status in ("201", "202", "200"):
                        headers.update(_CREATED)
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]
