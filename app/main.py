"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.catalog.router import router as catalog_router
from app.core.async_reads import close_pools
from app.core.config import get_settings
from app.core.docs import install_docs
from app.core.errors import install_error_handlers
from app.core.logging import configure_logging
from app.core.metrics import install_metrics
from app.core.openapi import install_openapi
from app.core.ratelimit import RateLimitHeaders
from app.core.request_id import HEADER, RequestIdMiddleware
from app.dubs import poll_cache
from app.dubs.router import router as dubs_router
from app.files.router import router as files_router
from app.files.router import storage_router
from app.health.router import router as health_router
from app.keys.router import router as keys_router
from app.playground.router import install_playground
from app.preflights.router import router as preflights_router
from app.webhooks.events import register_webhook_events
from app.webhooks.router import router as webhooks_router

DESCRIPTION = """Redub dubs video: send a video and a new audio track, get back the video with the
speakers' lips moving to the new audio. Jobs are asynchronous: poll `GET /v1/dubs/{id}` or receive a
signed webhook. Errors are `application/problem+json` with a stable `code`."""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    poll_cache.start()
    yield
    await poll_cache.stop()
    await close_pools()


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    app = FastAPI(
        title="Redub API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)
    install_playground(app)
    install_error_handlers(app)
    install_openapi(app)
    register_webhook_events(app)
    app.add_middleware(RateLimitHeaders)
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Prefer", HEADER],
            expose_headers=[
                HEADER,
                "Location",
                "Retry-After",
                "Idempotent-Replayed",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "RateLimit-Policy",
            ],
        )
    install_metrics(app)
    # Outermost: every answer, errors and CORS refusals included, carries the request id.
    app.add_middleware(RequestIdMiddleware, access_log=settings.access_log)
    # Preflights before dubs: `/v1/dubs/preflight/...` must never reach the `/v1/dubs/{id}/...` routes.
    for router in (
        health_router,
        keys_router,
        preflights_router,
        dubs_router,
        catalog_router,
        webhooks_router,
        files_router,
        storage_router,
    ):
        app.include_router(router)
    return app
