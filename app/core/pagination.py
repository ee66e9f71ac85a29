"""Opaque cursors for newest-first lists: the last item's (created_at, id), base64url JSON."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

from app.core.errors import PROBLEM_RESPONSES, ApiError

# What a list route answers to a cursor it did not give out (documented, like every other answer).
INVALID_CURSOR_RESPONSE: dict[int | str, dict[str, Any]] = {400: PROBLEM_RESPONSES[400]}


def encode_cursor(created_at: datetime, item_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(item_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, item_id = json.loads(raw)
        return datetime.fromisoformat(created_at), uuid.UUID(item_id)
    except (ValueError, TypeError) as error:
        raise ApiError(400, "invalid_cursor", "The cursor is not one this API gave out.") from error
