"""`X-Request-Id`: every answer carries one (the client's own when it sends a sane one), and every log line
written while the request runs names it, so a support ticket's id finds the logs."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import log_fields

HEADER = "X-Request-Id"
_ACCEPTED = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


logger = logging.getLogger(__name__)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(HEADER.lower().encode(), b"").decode("latin-1")
        request_id = given if _ACCEPTED.match(given) else f"req_{uuid.uuid4().hex}"
        started = time.monotonic()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [
                    *message.get("headers", []),
                    (HEADER.lower().encode(), request_id.encode()),
                ]
            await send(message)

        # Every log line of the request names it (and the account, once the key is known).
        with log_fields(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                # One access line per request, carrying the id (REDUB_ACCESS_LOG=false turns it off).
                if self.access_log:
                    logger.info(
                        "request",
                        extra={
                            "method": scope.get("method"),
                            "path": scope.get("path"),
                            "status": status,
                            "duration_ms": round(1000 * (time.monotonic() - started), 1),
                        },
                    )
