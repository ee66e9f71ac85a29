"""The one settings object of the service; every limit, timeout and address is read from `REDUB_*`."""

from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from app.core.fetch import DNS_TIMEOUT_S

# Public development defaults, refused in production (B105).
DEVELOPMENT_KEY_HASH_SECRET = "development-only-key-hash-secret"  # nosec B105
DEVELOPMENT_STORAGE_SIGNING_SECRET = "development-only-storage-signing-secret"  # nosec B105
DEVELOPMENT_SECRETS = (DEVELOPMENT_KEY_HASH_SECRET, DEVELOPMENT_STORAGE_SIGNING_SECRET)
# A production secret: at least 32 characters and 2.5 bits of entropy per character as written (`openssl rand
# -hex 32` gives 64 characters at about 3.8); placeholders are refused. The floor is below what random secrets
# reach: 1 in 9,000 random 32-character hex strings measured under 3.0, none of 2 million under 2.7. A string
# of four repeated characters scores 2.0.
MIN_SECRET_LENGTH = 32
MIN_SECRET_BITS_PER_CHAR = 2.5
PLACEHOLDER_WORDS = ("change_me", "changeme", "change-me", "development-only", "example", "placeholder")


def secret_weakness(value: str) -> str | None:
    """Why `value` is not a strong secret, or None when it is."""
    if value in DEVELOPMENT_SECRETS:
        return "is a public development default"
    if any(word in value.lower() for word in PLACEHOLDER_WORDS):
        return "is a placeholder"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    counts = Counter(value).values()
    bits_per_char = -sum(count / len(value) * math.log2(count / len(value)) for count in counts)
    if bits_per_char < MIN_SECRET_BITS_PER_CHAR:
        return "is not random enough (use e.g. `openssl rand -hex 32`)"
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REDUB_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    log_json: bool = True
    # One `request` log line per API request (method, path, status, duration, request id).
    access_log: bool = True
    # Prometheus metrics (README, "Metrics and logs"): `/metrics` on the API port when enabled, behind
    # `Authorization: Bearer <metrics_token>` when a token is set; a worker serves them on `metrics_port`
    # (0: none).
    metrics_enabled: bool = True
    metrics_token: str = ""
    metrics_port: int = 0

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/redub"
    # Put into `database_url` (percent-encoded there) when set: a password with `@`, `:` or `/` needs no
    # encoding by hand. docker-compose.yml passes POSTGRES_PASSWORD this way.
    database_password: str = ""
    database_pool_size: int = 10
    # `Retry-After` of the 503 `database_unavailable` answer while the database cannot be reached (a restart
    # or a failover takes seconds).
    database_retry_after_s: int = 5
    # A dub, segment or preflight task that finds the database unreachable runs again this many times, after
    # 2 s, 4 s, 8 s… (at most a minute apart, about 15 minutes in all), instead of being dropped.
    task_database_retries: int = 20
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Celery broker; empty means `redis_url`. Embedded mode uses kombu's `filesystem://` transport.
    broker_url: str = ""
    broker_folder: str = ""
    # Prefix on every Redis key (Celery queues and rate-limit counters) so several deployments share a server.
    redis_key_prefix: str = ""
    # Longer than the longest task, or Redis hands a running task to a second worker.
    broker_visibility_timeout_s: int = 4 * 3600

    storage_backend: Literal["s3", "local"] = "s3"
    s3_endpoint_url: str = ""
    s3_public_endpoint_url: str = ""  # host customers reach for presigned URLs, when it differs
    s3_bucket: str = "redub"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_region: str = "us-east-1"
    local_storage_dir: str = "data/objects"
    storage_signing_secret: str = DEVELOPMENT_STORAGE_SIGNING_SECRET
    presign_ttl_s: int = 3600
    # Outputs, stored inputs and uploads are removed this many days after the dub ends (or the upload).
    retention_days: float = 30.0
    retention_sweep_interval_s: float = 3600.0

    public_base_url: str = "http://127.0.0.1:8000"
    # Browser origins allowed to call the API (CORS), e.g. ["https://app.example.com"]; empty: none.
    cors_allow_origins: list[str] = Field(default_factory=list)
    key_hash_secret: str = DEVELOPMENT_KEY_HASH_SECRET
    # How long an API process trusts a key it checked: a revoked key stops working within this bound.
    auth_cache_ttl_s: float = 1.0
    last_used_resolution_s: int = 60

    allow_private_urls: bool = False
    fetch_max_bytes: int = 2 * 1024**3
    fetch_timeout_s: float = 300.0
    fetch_max_redirects: int = 5
    # A fetch must bring at least this many bytes per second, averaged over every `fetch_rate_window_s`
    # (a server trickling data would otherwise hold a worker until the deadline); 0 turns the floor off.
    fetch_min_bytes_per_s: float = 16 * 1024
    fetch_rate_window_s: float = 10.0
    # Resolving a customer's host (at request time and in the worker) waits at most this long.
    dns_timeout_s: float = DNS_TIMEOUT_S
    max_upload_bytes: int = 2 * 1024**3

    default_rate_limit_per_minute: int = 120
    # Reads (GET) count in a bucket of their own, this many times the key's per-minute limit.
    read_rate_limit_multiplier: int = 10
    default_max_concurrent: int = 4
    # Unfinished preflights one key may have at once (each holds a worker while it fetches); 0 = unlimited.
    max_concurrent_preflights_per_key: int = 2
    # Requests with a wrong API key from one client address within a minute of its first; more are refused
    # with 429 (a key cannot be guessed, but each guess costs a database lookup).
    auth_failures_per_minute: int = 20
    default_max_duration_s: float = 600.0
    idempotency_ttl_s: int = 24 * 3600
    list_max_limit: int = 100
    # Exact per-process cache of polled jobs, kept true by PostgreSQL change notifications.
    poll_cache: bool = True
    # Polls of queued and running dubs share one reading of the recent dubs' times (their ETA) this long.
    eta_history_ttl_s: float = 5.0
    metadata_max_keys: int = 50

    # A `processing` job whose heartbeat is older than this is handed back to the queue.
    stale_processing_after_s: float = 600.0
    # A `queued` job older than this whose task may have been lost (broker down at commit) is sent again.
    stale_queued_after_s: float = 1800.0
    reaper_interval_s: float = 60.0
    beat_schedule_path: str = "celerybeat-schedule"  # where an embedded beat keeps its last-run times
    max_job_attempts: int = 3
    # A dub that broke on our side (storage or database unreachable) runs again after this many seconds
    # times its attempt number.
    job_retry_delay_s: float = 30.0
    progress_write_interval_s: float = 1.0
    cancel_poll_interval_s: float = 1.0
    work_dir: str = ""
    # One dub across many workers: a task per segment on the `gpu` queue and an assembly task (off: one
    # worker renders the whole dub).
    fanout: bool = False
    # Frames per segment (1+4k): the unit of work a GPU worker takes when dubs fan out.
    segment_frames: int = 81
    # Output frames a CPU worker encodes in one assembly task (fan-out): a dub's assembly is cut into chunks
    # of about this many frames, encoded at once on every free CPU worker and joined without re-encoding
    # (0: one task encodes the whole output). 500 frames: 20 s at 25 fps, two of x264's default keyframe
    # intervals, so a chunk's own keyframe costs little.
    assembly_chunk_frames: int = Field(default=500, ge=0)
    # Fairness between accounts on the `gpu` queue: an account's first this many queued segments go at the
    # broker's first priority, the next 3x at the second, the next 12x at the third, the rest at the last.
    segment_priority_band: int = 8
    # A dub still processing this long after it started fails as `deadline_exceeded` (0: no deadline).
    job_deadline_s: float = 6 * 3600.0
    # Bytes of inputs a worker machine keeps on disk (its worker processes share them) to render a job's
    # further segments without downloading again: 20 GiB holds the inputs of ~28 ten-minute 1080p dubs
    # (~715 MB each).
    input_cache_bytes: int = Field(default=20 * 1024**3, ge=0)
    # Decoded inputs (dub tracks, memory-mapped; analyses) a worker process keeps for the next segment of the
    # same dub. A few: a GPU worker may alternate between the dubs of several accounts.
    input_cache_decoded_items: int = Field(default=4, ge=0)
    # The model a dub uses when its request names none: an id of `GET /v1/models`; empty means the shipped
    # checkpoint (or passthrough where its weights are not installed).
    default_model: str = ""
    # Preflight's render-time estimate until a dub with the model has succeeded here to measure it: seconds
    # the renderer takes per re-rendered frame (an assumption; the estimate says it is one).
    render_seconds_per_frame: float = 0.25
    # Preflights analyse media, so they need a worker with the engine installed (not the API image).
    preflight_queue: str = "default"

    webhook_timeout_s: float = 10.0
    # Delay before each retry; with jitter the whole schedule spans about three days.
    webhook_retry_schedule_s: list[float] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0]
    )
    webhook_jitter_fraction: float = 0.1
    webhook_sweep_interval_s: float = 30.0
    webhook_progress_interval_s: float = 10.0
    webhook_secret_rotation_overlap_s: int = 24 * 3600

    @model_validator(mode="after")
    def _database_password_into_url(self) -> Settings:
        if self.database_password:
            url = make_url(self.database_url).set(password=self.database_password)
            self.database_url = url.render_as_string(hide_password=False)
        return self

    @model_validator(mode="after")
    def _refuse_weak_production_settings(self) -> Settings:
        if self.environment != "production":
            return self
        for name, value in (
            ("KEY_HASH_SECRET", self.key_hash_secret),
            ("STORAGE_SIGNING_SECRET", self.storage_signing_secret),
        ):
            weakness = secret_weakness(value)
            if weakness is not None:
                raise ValueError(f"REDUB_{name} {weakness}: production needs a strong random secret")
        if self.key_hash_secret == self.storage_signing_secret:
            raise ValueError("REDUB_KEY_HASH_SECRET and REDUB_STORAGE_SIGNING_SECRET must differ")
        if self.allow_private_urls:
            # Fetching private addresses lets any customer reach the cluster's own services (SSRF).
            raise ValueError("REDUB_ALLOW_PRIVATE_URLS=true is refused in production")
        return self

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or self.redis_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
