from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class FileOut(BaseModel):
    id: uuid.UUID
    object: Literal["file"] = "file"
    filename: str
    content_type: str
    size_bytes: int
    created_at: datetime
    expires_at: datetime


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileOut]
    next_cursor: str | None
    has_more: bool
