from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.core.storage import ObjectStorage, get_storage


async def storage() -> ObjectStorage:
    # Async so that resolving it costs no trip to the thread pool.
    return get_storage()


StorageDep = Annotated[ObjectStorage, Depends(storage)]
