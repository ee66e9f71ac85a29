from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from app.catalog import service
from app.catalog.schemas import ModelList
from app.core.errors import PROBLEM_RESPONSES
from app.keys.dependencies import CurrentKey

router = APIRouter(prefix="/v1/models", tags=["models"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=ModelList)
async def list_models(key: CurrentKey) -> ModelList:
    """The models a dub can name in `model`, with the default marked."""
    return await run_in_threadpool(service.list_models)
