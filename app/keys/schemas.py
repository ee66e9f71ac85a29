from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel


@dataclass(frozen=True)
class AuthenticatedKey:
    """What a request knows about its caller; a snapshot, safe to cache for a few seconds."""

    id: uuid.UUID
    account_id: uuid.UUID
    name: str
    prefix: str
    rate_limit_per_minute: int
    max_concurrent_jobs: int
    max_duration_s: float
    last_used_at: datetime | None


class KeyLimits(BaseModel):
    rate_limit_per_minute: int
    max_concurrent_jobs: int
    max_duration_s: float


class KeyOut(BaseModel):
    id: uuid.UUID
    account_id: uuid.UUID
    name: str
    prefix: str
    limits: KeyLimits
