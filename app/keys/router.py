from __future__ import annotations

from fastapi import APIRouter

from app.core.errors import COMMON_PROBLEMS
from app.keys.dependencies import CurrentKey
from app.keys.schemas import KeyLimits, KeyOut

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=COMMON_PROBLEMS)


@router.get("/current", response_model=KeyOut)
def current(key: CurrentKey) -> KeyOut:
    """The key making this request, with its limits."""
    return KeyOut(
        id=key.id,
        account_id=key.account_id,
        name=key.name,
        prefix=key.prefix,
        limits=KeyLimits(
            rate_limit_per_minute=key.rate_limit_per_minute,
            max_concurrent_jobs=key.max_concurrent_jobs,
            max_duration_s=key.max_duration_s,
        ),
    )
