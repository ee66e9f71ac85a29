from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.core.logging import bind_log_fields
from app.core.storage import ObjectStorage, get_storage


async def storage() -> ObjectStorage:
    # Async so that resolving it costs no trip to the thread pool.
    return get_storage()


StorageDep = Annotated[ObjectStorage, Depends(storage)]


async def name_the_dub_in_logs(request: Request) -> None:
    """Every log line of a request about one dub names it as `job_id`, as the workers' lines do."""
    dub_id = request.path_params.get("dub_id")
    if dub_id is not None:
        bind_log_fields(job_id=str(dub_id))
