"""All ORM models, imported here so `Base.metadata` is complete for Alembic and for the worker."""

from app.models.api_key import ApiKey
from app.models.base import Base
from app.models.file import MediaFile
from app.models.idempotency import IdempotencyKey
from app.models.job import Job, JobEvent, JobStatus
from app.models.job_segment import JobSegment, SegmentKind, SegmentStatus
from app.models.preflight import Preflight
from app.models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "Base",
    "IdempotencyKey",
    "Job",
    "JobEvent",
    "JobSegment",
    "JobStatus",
    "MediaFile",
    "Preflight",
    "SegmentKind",
    "SegmentStatus",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
