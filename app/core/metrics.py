"""Prometheus metrics (the official client): what the API and the workers count, and what is read from
Postgres and Redis when Prometheus scrapes.

Several processes (`uvicorn --workers N`, Celery's prefork pool) share their counts through the client's
multiprocess mode when `PROMETHEUS_MULTIPROC_DIR` names an empty folder at start; without it each process
reports its own. The metric names are listed in README, "Metrics and logs".
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import get_settings
from app.core.errors import ApiError

logger = logging.getLogger(__name__)

# Seconds: from a status poll (milliseconds) to an upload (tens of seconds).
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Seconds: a passthrough stage (well under a second) to the render of a long dub (an hour).
_STAGE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

HTTP_REQUESTS = Counter(
    "redub_http_requests",
    "API requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "redub_http_request_duration_seconds",
    "API request latency until the last byte of the answer, by method and route template.",
    ["method", "route"],
    buckets=_HTTP_BUCKETS,
)
JOBS_FINISHED = Counter(
    "redub_jobs_finished", "Dubs a worker or the reaper brought to an end, by final status.", ["status"]
)
STAGE_SECONDS = Histogram(
    "redub_stage_seconds",
    "Seconds one dub spent in a stage: fetch, the engine's stages (probe, analyze, audio, decode, render, "
    "paste, encode, verify) and upload.",
    ["stage"],
    buckets=_STAGE_BUCKETS,
)
# A dub's frames go through decode, render (where a face speaks) and encode; a fanned-out segment's through
# its render alone, the assembly's decode and encode being counted as stages.
RENDER_LOOP_STAGES = ("decode", "render", "encode")
SEGMENTS_RENDERED = Counter("redub_segments_rendered", "Segments through the render loop.")
FRAMES_RENDERED = Counter("redub_frames_rendered", "Output frames through the render loop.")
RENDER_SECONDS = Counter("redub_render_seconds", "Seconds the render loop took for redub_frames_rendered.")
FRAMES_PER_SECOND = Gauge(
    "redub_worker_frames_per_second",
    "Frames per second of the render loop in the last dub or segment this worker process rendered.",
    multiprocess_mode="livemostrecent",
)
WEBHOOK_ATTEMPTS = Counter(
    "redub_webhook_attempts",
    "Webhook delivery attempts by outcome: delivered, retrying (a retry is scheduled), failed (the schedule "
    "is spent), gone (410: endpoint disabled), skipped (endpoint disabled or key revoked before sending).",
    ["outcome"],
)
FETCH_FAILURES = Counter(
    "redub_fetch_failures", "Media fetches from customers' URLs that failed, by error code.", ["reason"]
)


def record_render(frames: int, seconds: float, segments: int) -> None:
    """Frames and segments this worker process rendered in `seconds`, and so its current speed."""
    FRAMES_RENDERED.inc(frames)
    SEGMENTS_RENDERED.inc(segments)
    if seconds > 0:
        RENDER_SECONDS.inc(seconds)
        FRAMES_PER_SECOND.set(frames / seconds)


def record_stages(stage_seconds: dict[str, float]) -> None:
    for stage, seconds in stage_seconds.items():
        STAGE_SECONDS.labels(stage).observe(seconds)


# --- read at scrape time ----------------------------------------------------------------------------


class ServiceCollector(Collector):
    """Jobs by status (queued and processing: the index on status answers without reading ended jobs),
    stale jobs, pending webhook deliveries and the Celery queues' lengths, read when Prometheus scrapes.
    A dependency that does not answer reads as `redub_dependency_up 0`, never as a failed scrape."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "redub_dependency_up", "Whether /metrics could read the dependency.", labels=["dependency"]
        )
        try:
            yield from self._from_postgres()
            up.add_metric(["postgres"], 1)
        except Exception:
            logger.warning("metrics could not read Postgres", exc_info=True)
            up.add_metric(["postgres"], 0)
        if get_settings().celery_broker_url.startswith("redis"):
            try:
                yield self._queue_lengths()
                up.add_metric(["redis"], 1)
            except Exception:
                logger.warning("metrics could not read Redis", exc_info=True)
                up.add_metric(["redis"], 0)
        yield up

    def _from_postgres(self) -> Iterable[Metric]:
        from app.core.db import read_connection
        from app.models import Job, JobStatus, WebhookDelivery
        from app.models.base import utcnow

        settings = get_settings()
        now = utcnow()
        active = [JobStatus.QUEUED, JobStatus.PROCESSING]
        with read_connection() as connection:
            counts = dict(
                connection.execute(
                    select(Job.status, func.count()).where(Job.status.in_(active)).group_by(Job.status)
                ).all()
            )
            # As the reaper judges them: queued and untouched, or processing without a heartbeat (a fanned-out
            # dub's segments are judged one by one while it renders).
            stale = {
                JobStatus.QUEUED: connection.scalar(
                    select(func.count()).where(
                        Job.status == JobStatus.QUEUED,
                        Job.updated_at < now - timedelta(seconds=settings.stale_queued_after_s),
                    )
                ),
                JobStatus.PROCESSING: connection.scalar(
                    select(func.count()).where(
                        Job.status == JobStatus.PROCESSING,
                        Job.heartbeat_at < now - timedelta(seconds=settings.stale_processing_after_s),
                        Job.progress_stage.is_distinct_from("rendering"),
                    )
                ),
            }
            pending = connection.scalar(select(func.count()).where(WebhookDelivery.status == "pending"))
        jobs = GaugeMetricFamily("redub_jobs", "Unfinished dubs by status.", labels=["status"])
        stale_jobs = GaugeMetricFamily(
            "redub_jobs_stale",
            "Unfinished dubs not updated for longer than the reaper's threshold (REDUB_STALE_*_AFTER_S).",
            labels=["status"],
        )
        for status in active:
            jobs.add_metric([status.value], counts.get(status, 0))
            stale_jobs.add_metric([status.value], stale[status] or 0)
        yield jobs
        yield stale_jobs
        yield GaugeMetricFamily(
            "redub_webhook_deliveries_pending",
            "Webhook events not yet delivered nor given up.",
            value=pending or 0,
        )

    def _queue_lengths(self) -> Metric:
        from app.core.queue import QUEUE_DEFAULT, QUEUE_GPU, QUEUE_WEBHOOKS, queue_lengths

        queues = GaugeMetricFamily("redub_queue_length", "Tasks waiting in a Celery queue.", labels=["queue"])
        for name, length in queue_lengths([QUEUE_DEFAULT, QUEUE_GPU, QUEUE_WEBHOOKS]).items():
            queues.add_metric([name], length)
        return queues


# --- exposition -------------------------------------------------------------------------------------


def _registry(with_service: bool) -> CollectorRegistry:
    """What one scrape reports: every process's counts (multiprocess mode) or this process's."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    if with_service:
        registry.register(ServiceCollector())
    return registry


class _ThisProcess(Collector):
    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


class HttpMetrics:
    """Counts every answer by its route's template (`/v1/dubs/{dub_id}`, never the path: no ids in labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # The router puts the matched route in the scope; no match (a 404 on any path) is one label.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "other"
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_DURATION.labels(method, route).observe(time.perf_counter() - started)


def install_metrics(app: FastAPI) -> None:
    """`GET /metrics` (when REDUB_METRICS_ENABLED), behind REDUB_METRICS_TOKEN when one is set."""
    settings = get_settings()
    app.add_middleware(HttpMetrics)
    if not settings.metrics_enabled:
        return

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        token = get_settings().metrics_token
        if token:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), token.encode()):
                raise ApiError(
                    401,
                    "unauthorized",
                    "Send the metrics token as `Authorization: Bearer <token>`.",
                    headers={"WWW-Authenticate": 'Bearer realm="redub-metrics"'},
                )
        return Response(generate_latest(_registry(with_service=True)), media_type=CONTENT_TYPE_LATEST)


def serve_worker_metrics(port: int) -> None:
    """A worker's metrics on their own port (the worker has no HTTP server of its own)."""
    start_http_server(port, registry=_registry(with_service=False))
    logger.info("metrics served", extra={"port": port})


def forget_process(pid: int) -> None:
    """A pool process ended: its live gauges leave the multiprocess totals."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
